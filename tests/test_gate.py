"""The gate's statistics on constructed predictions whose answers are known by hand."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from transferflow.gate import METRICS, compare, majority_label, mcnemar, paired_bootstrap, score_ci


def pairs(both: int, champion_only: int, challenger_only: int, neither: int):
    """Labels and two models' predictions with exactly these counts of right/wrong rows."""
    n = both + champion_only + challenger_only + neither
    labels = np.arange(n) % 2  # both classes present
    right = lambda mask: np.where(mask, labels, 1 - labels)  # noqa: E731
    a = np.r_[[True] * both, [True] * champion_only, [False] * challenger_only, [False] * neither]
    b = np.r_[[True] * both, [False] * champion_only, [True] * challenger_only, [False] * neither]
    return labels, right(a), right(b)


def test_mcnemar_exact_matches_the_binomial_by_hand():
    # 12 discordant rows, 10 for the challenger: p = 2 * (C(12,10) + C(12,11) + C(12,12)) / 2**12
    m = mcnemar(*pairs(100, 2, 10, 20))
    assert (m.champion_only, m.challenger_only, m.method) == (2, 10, "McNemar exact")
    assert m.p_value == pytest.approx(2 * (66 + 12 + 1) / 4096)


def test_mcnemar_chi_square_with_continuity_correction():
    # (|20 - 40| - 1)^2 / 60 = 6.0167; P(chi2_1 > 6.0167) = erfc(sqrt(6.0167 / 2)) = 0.01417
    m = mcnemar(*pairs(100, 20, 40, 20))
    assert m.statistic == pytest.approx(361 / 60)
    assert m.p_value == pytest.approx(0.01417, abs=5e-5)
    assert m.method.startswith("McNemar chi-square")


def test_mcnemar_without_disagreement_finds_nothing():
    assert mcnemar(*pairs(50, 0, 0, 10)).p_value == 1.0


def test_vectorised_macro_f1_is_sklearns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    for p in (rng.integers(0, 3, 300), np.zeros(300, int), y):
        assert METRICS["f1"](y, p) == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    # resamples along the last axis, as scipy.stats.bootstrap passes them
    ys, ps = np.stack([y, y[::-1]]), np.stack([p, p[::-1]])
    assert METRICS["f1"](ys, ps, axis=-1) == pytest.approx([f1_score(y, p, average="macro")] * 2)


def test_score_interval_brackets_the_score():
    labels, a, _ = pairs(160, 0, 0, 40)
    s = score_ci(labels, a, "accuracy")
    assert s.value == 0.8 and s.low < 0.8 < s.high and s.high - s.low < 0.15
    perfect = score_ci(labels, labels, "accuracy")
    assert (perfect.value, perfect.low, perfect.high) == (1.0, 1.0, 1.0)


def test_paired_bootstrap_sees_a_real_gain_and_no_gain():
    diff, p = paired_bootstrap(*pairs(200, 5, 60, 35), metric="accuracy")
    assert diff.value == pytest.approx(55 / 300) and diff.low > 0 and p < 0.01
    diff, p = paired_bootstrap(*pairs(200, 20, 20, 60), metric="accuracy")
    assert diff.value == 0 and diff.low < 0 < diff.high and p > 0.5


GATES = dict(metric="accuracy", margin=0.01, min_scores={"accuracy": 0.5}, alpha=0.05)


@pytest.mark.parametrize("test", ["mcnemar", "bootstrap"])
def test_clearly_better_challenger_passes(test):
    result = compare(*pairs(150, 2, 30, 18), test=test, **GATES)
    assert result.promote, result.table()


def test_worse_challenger_fails_margin_and_significance():
    result = compare(*pairs(150, 30, 2, 18), **GATES)
    failed = {c.name for c in result.checks if not c.passed}
    assert not result.promote and failed == {"accuracy gain over champion", "significance (McNemar)"}


@pytest.mark.parametrize("test", ["mcnemar", "bootstrap"])
def test_equal_but_lucky_challenger_fails_only_significance(test):
    # +3 rows of 200 (1.5 points, above the 1-point margin), but 23 rows disagree: a coin could do that
    result = compare(*pairs(150, 10, 13, 27), test=test, **GATES)
    failed = [c.name for c in result.checks if not c.passed]
    assert not result.promote and len(failed) == 1 and failed[0].startswith("significance"), result.table()


def test_floor_fails_a_challenger_that_beats_a_weak_champion():
    result = compare(*pairs(50, 0, 60, 90), **GATES | {"min_scores": {"accuracy": 0.6, "f1": 0.1}})
    assert [c.name for c in result.checks if not c.passed] == ["min test accuracy"]


def test_without_champion_only_the_floors_count():
    labels, _, b = pairs(150, 0, 30, 20)
    result = compare(labels, None, b, **GATES)
    assert result.promote and [c.name for c in result.checks] == ["min test accuracy"]
    assert result.champion is None and "| - |" in result.table()


def test_table_shows_both_models_and_every_check():
    table = compare(*pairs(150, 2, 30, 18), **GATES).table("champion v1", "challenger v2")
    assert "| champion v1 | challenger v2 |" in table
    assert "| accuracy | 0.7600 [" in table and "| f1 |" in table
    assert table.count("| yes |") == 3


def test_a_model_no_better_than_the_majority_class_cannot_pass():
    labels = [0] * 70 + [1] * 30
    always_zero = [0] * 100  # 0.70: the majority class, whatever the floor in min_scores allows
    result = compare(labels, None, always_zero, min_scores={"accuracy": 0.5}, majority_class=majority_label(labels))
    assert not result.promote
    assert [c.passed for c in result.checks] == [True, False]
    better = [0] * 70 + [1] * 20 + [0] * 10  # 0.90
    assert compare(labels, None, better, majority_class=0).promote
