"""Is the challenger really better? Paired statistics on two models' predictions for the same rows.

    from transferflow.gate import compare
    result = compare(labels, champion_preds, challenger_preds, metric="accuracy", margin=0.01,
                     min_scores={"accuracy": 0.8}, test="mcnemar", alpha=0.05, majority_class=0)
    result.promote       # True only when every check passed
    print(result.table())  # the side-by-side markdown table behind the decision

Pure functions of label ids; no registry, no files, so the answers can be checked on constructed
predictions. A ner task is judged per sentence (`scoring=NER`): labels and predictions are then count
rows per sentence (transferflow.token_classification.sentence_outcomes), resampled whole sentences at a
time; f1 is entity-level micro F1, accuracy token accuracy, and a sentence is "right" for McNemar when its
predicted entity set equals the gold set.
p-values are two-sided (the textbook McNemar test); the significance check passes only when
the challenger is also the one ahead.
Every score carries a 95% percentile bootstrap interval over the test rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np
from scipy import stats

Metric = Literal["accuracy", "f1"]


def _accuracy(y: np.ndarray, p: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y == p, axis=axis)


def _macro_f1(y: np.ndarray, p: np.ndarray, axis: int = -1) -> np.ndarray:
    # sklearn's macro F1 (zero_division=0) averages over the classes present in labels or predictions;
    # written out because the bootstrap scores thousands of resamples at once, where a per-call
    # f1_score costs a millisecond each. tests/test_gate.py checks it against sklearn.
    classes = range(int(max(y.max(), p.max())) + 1)
    total, present = 0.0, 0
    for k in classes:
        tp = np.sum((p == k) & (y == k), axis=axis)
        wrong = np.sum((p == k) != (y == k), axis=axis)  # false positives + false negatives
        seen = (2 * tp + wrong) > 0
        total = total + np.where(seen, 2 * tp / np.maximum(2 * tp + wrong, 1), 0.0)
        present = present + seen
    return total / np.maximum(present, 1)


METRICS = {"accuracy": _accuracy, "f1": _macro_f1}
"""Vectorised over resamples: `fn(labels, preds, axis=-1)`; macro F1 as in the leaderboard."""


# ner: per sentence, labels are rows (gold entities, words) and predictions rows (predicted entities,
# correct entities, correct words, exact); scipy resamples the last axis, so row k of a resample is y[k].
def _token_accuracy(y: np.ndarray, p: np.ndarray, axis: int = -1) -> np.ndarray:
    return p[2].sum(axis) / np.maximum(y[1].sum(axis), 1)


def _entity_f1(y: np.ndarray, p: np.ndarray, axis: int = -1) -> np.ndarray:
    # micro F1 = 2 TP / (predicted + gold), the same number as seqeval's over the same sentences
    return 2 * p[1].sum(axis) / np.maximum(p[0].sum(axis) + y[0].sum(axis), 1)


@dataclass(frozen=True)
class Scoring:
    """What the rows are and how they are scored: the metrics, and which rows a model got right."""

    metrics: dict[str, Callable]
    """Vectorised `fn(labels, preds, axis=-1)` per metric name (the names params may use)."""
    right: Callable[[np.ndarray, np.ndarray], np.ndarray]
    """Per row, whether the prediction is right: the unit McNemar counts."""
    unit: str
    """What a row is, in words, for the gate's detail line."""


CLASSIFICATION = Scoring(METRICS, lambda y, p: p == y, "rows")
NER = Scoring({"accuracy": _token_accuracy, "f1": _entity_f1}, lambda y, p: p[3] == 1,
              "sentences (right: predicted entity set equals the gold set)")
CONFIDENCE = 0.95
"""Level of every reported interval (model card and gate table)."""
RESAMPLES = 1000
"""Bootstrap resamples behind every reported interval, unless a caller asks for more."""
EXACT_BELOW = 25
"""McNemar uses the exact binomial test when fewer pairs disagree than this, chi-square otherwise."""


@dataclass(frozen=True)
class Score:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}]"


@dataclass(frozen=True)
class Check:
    name: str
    required: str
    measured: str
    passed: bool


@dataclass(frozen=True)
class McNemar:
    champion_only: int
    """Rows only the champion gets right (b)."""
    challenger_only: int
    """Rows only the challenger gets right (c)."""
    statistic: float
    p_value: float
    method: str


@dataclass(frozen=True)
class GateResult:
    metric: str
    champion: dict[str, Score] | None
    challenger: dict[str, Score]
    difference: Score | None
    """Challenger minus champion on `metric`, with its paired bootstrap interval."""
    test: str
    p_value: float | None
    test_detail: str
    checks: list[Check] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_dict(self) -> dict:
        return asdict(self) | {"promote": self.promote}

    def table(self, champion_label: str = "champion", challenger_label: str = "challenger") -> str:
        """Markdown: scores side by side, then every check with what was required and measured."""
        lines = [f"| test metric | {champion_label} | {challenger_label} | difference |", "|---|---|---|---|"]
        for name, score in self.challenger.items():
            old = self.champion[name] if self.champion else None
            diff = f"{score.value - old.value:+.4f}" if old else "-"
            if name == self.metric and self.difference:
                diff = f"{self.difference.value:+.4f} [{self.difference.low:+.4f}, {self.difference.high:+.4f}]"
            lines.append(f"| {name} | {old or '-'} | {score} | {diff} |")
        lines += ["", "| check | required | measured | passed |", "|---|---|---|---|"]
        lines += [f"| {c.name} | {c.required} | {c.measured} | {'yes' if c.passed else 'NO'} |" for c in self.checks]
        return "\n".join(lines) + "\n"


def _arrays(*columns: Sequence[int]) -> list[np.ndarray]:
    arrays = [np.asarray(c) for c in columns]
    # rows lie along the last axis (ner rows are columns of per-sentence counts)
    if len({a.shape[-1] for a in arrays}) != 1 or not arrays[0].shape[-1]:
        raise ValueError("labels and predictions must be non-empty and of the same length")
    return arrays


def _by_row(fn: Callable, *arrays: np.ndarray) -> tuple[tuple[np.ndarray], Callable]:
    """(data, statistic) for scipy.stats.bootstrap resampling rows of all arrays together: row indices are
    the one sample, as scipy does itself for `paired=True`, which cannot pair ner's count rows (2 x n
    gold against 4 x n predicted) since it broadcasts the samples against each other."""
    return (np.arange(arrays[0].shape[-1]),), lambda i, axis=-1: fn(*(a[..., i] for a in arrays), axis=axis)


def score_ci(labels: Sequence[int], preds: Sequence[int], metric: Metric, n_resamples: int = RESAMPLES,
             seed: int = 0, scoring: Scoring = CLASSIFICATION) -> Score:
    """The metric with a percentile bootstrap interval over rows (rows resampled with replacement)."""
    y, p = _arrays(labels, preds)
    fn = scoring.metrics[metric]
    # Percentile, not BCa: BCa is undefined (nan) when every resample gives the same score.
    res = stats.bootstrap(*_by_row(fn, y, p), vectorized=True, n_resamples=n_resamples,
                          confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed))
    return Score(float(fn(y, p)), float(res.confidence_interval.low), float(res.confidence_interval.high))


def mcnemar(labels: Sequence[int], champion: Sequence[int], challenger: Sequence[int],
            scoring: Scoring = CLASSIFICATION) -> McNemar:
    """McNemar's test on the rows where exactly one model is right.

    Exact binomial when few rows disagree, else chi-square with continuity correction.
    """
    y, a, b = _arrays(labels, champion, challenger)
    right_a, right_b = scoring.right(y, a), scoring.right(y, b)
    only_a = int(np.sum(right_a & ~right_b))
    only_b = int(np.sum(~right_a & right_b))
    n = only_a + only_b
    if n == 0:  # the models agree on every row: no evidence of any difference
        return McNemar(only_a, only_b, 0.0, 1.0, "McNemar (no discordant rows)")
    if n < EXACT_BELOW:
        p = stats.binomtest(only_b, n, 0.5, alternative="two-sided").pvalue
        return McNemar(only_a, only_b, float(only_b), float(p), "McNemar exact")
    statistic = (abs(only_a - only_b) - 1) ** 2 / n
    return McNemar(only_a, only_b, float(statistic), float(stats.chi2.sf(statistic, df=1)),
                   "McNemar chi-square, continuity-corrected")


def paired_bootstrap(labels: Sequence[int], champion: Sequence[int], challenger: Sequence[int], metric: Metric,
                     n_resamples: int = RESAMPLES, seed: int = 0,
                     scoring: Scoring = CLASSIFICATION) -> tuple[Score, float]:
    """Challenger minus champion on `metric`, its interval, and a two-sided bootstrap p-value.

    Both models are scored on the same resampled rows, so row difficulty cancels out. The p-value is
    twice the share of resamples on the losing side of zero (capped at 1).
    """
    y, a, b = _arrays(labels, champion, challenger)
    fn = scoring.metrics[metric]
    diff = lambda y, a, b, axis=-1: fn(y, b, axis) - fn(y, a, axis)  # noqa: E731
    res = stats.bootstrap(*_by_row(diff, y, a, b), vectorized=True, n_resamples=n_resamples,
                          confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed))
    dist = res.bootstrap_distribution
    p = min(1.0, 2 * min(np.mean(dist <= 0), np.mean(dist >= 0)))
    ci = res.confidence_interval
    return Score(float(diff(y, a, b)), float(ci.low), float(ci.high)), float(p)


def majority_label(train_labels: Sequence[int]) -> int:
    """The most frequent label of a training split (the smallest id on a tie): the model that learned
    nothing predicts it for every row."""
    counts = np.bincount(np.asarray(train_labels))
    return int(np.argmax(counts))


def compare(labels: Sequence[int], champion: Sequence[int] | None, challenger: Sequence[int], *,
            metric: Metric = "accuracy", margin: float = 0.0, min_scores: dict[str, float] | None = None,
            test: Literal["mcnemar", "bootstrap"] = "mcnemar", alpha: float = 0.05,
            n_resamples: int = RESAMPLES, seed: int = 0, scoring: Scoring = CLASSIFICATION,
            majority_class: int | None = None) -> GateResult:
    """Run every gate on the same test rows; `champion=None` (no champion yet) checks the floors only.

    `majority_class` (a label id, the train split's most frequent): the challenger must score above
    predicting it for every row, so a model that learned nothing never becomes champion, whatever
    `min_scores` says.
    """
    min_scores = min_scores or {}
    scored = lambda preds: {m: score_ci(labels, preds, m, n_resamples, seed, scoring)  # noqa: E731
                            for m in scoring.metrics}
    new = scored(challenger)
    checks = [Check(f"min test {m}", f">= {floor:.4f}", f"{new[m].value:.4f}", new[m].value >= floor)
              for m, floor in sorted(min_scores.items())]
    if majority_class is not None:
        y = _arrays(labels)[0]
        floor = float(scoring.metrics[metric](y, np.full_like(y, majority_class)))
        checks.append(Check(f"{metric} above the majority class", f"> {floor:.4f} (always label {majority_class})",
                            f"{new[metric].value:.4f}", new[metric].value > floor))
    if champion is None:
        return GateResult(metric, None, new, None, test, None, "no champion to compare with", checks)
    old = scored(champion)
    difference, boot_p = paired_bootstrap(labels, champion, challenger, metric, n_resamples, seed, scoring)
    # A float margin like 0.01 is not exact in binary; round so "exactly one point better" passes.
    checks.append(Check(f"{metric} gain over champion", f">= {margin:+.4f}", f"{difference.value:+.4f}",
                        round(difference.value - margin, 10) >= 0 and difference.value > 0))
    if test == "mcnemar":
        m = mcnemar(labels, champion, challenger, scoring)
        p, detail = m.p_value, f"{m.method}: champion-only right {m.champion_only}, challenger-only {m.challenger_only}"
        if scoring is not CLASSIFICATION:
            detail += f", counted over {scoring.unit}"
    else:
        p, detail = boot_p, f"paired bootstrap of the {metric} difference, {n_resamples} resamples"
    # Two-sided p, so the check also needs the challenger ahead: "significantly worse" must not pass.
    ahead = difference.value > 0
    checks.append(Check(f"significance ({'McNemar' if test == 'mcnemar' else 'paired bootstrap'})",
                        f"p < {alpha}, challenger ahead", f"p = {p:.4g}{'' if ahead else ', challenger not ahead'}",
                        p < alpha and ahead))
    return GateResult(metric, old, new, difference, test, p, detail, checks)
