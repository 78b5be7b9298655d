"""Is the challenger really better? Paired statistics on two models' predictions for the same rows.

    from transferflow.gate import compare
    result = compare(labels, champion_preds, challenger_preds, metric="accuracy", margin=0.01,
                     min_scores={"accuracy": 0.8}, test="mcnemar", alpha=0.05)
    result.promote       # True only when every check passed
    print(result.table())  # the side-by-side markdown table behind the decision

Pure functions of label ids; no registry, no files, so the answers can be checked on constructed
predictions. p-values are two-sided (the textbook McNemar test); the significance check passes only when
the challenger is also the one ahead.
Every score carries a 95% percentile bootstrap interval over the test rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Sequence

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
    if len({len(a) for a in arrays}) != 1 or not len(arrays[0]):
        raise ValueError("labels and predictions must be non-empty and of the same length")
    return arrays


def score_ci(labels: Sequence[int], preds: Sequence[int], metric: Metric, n_resamples: int = RESAMPLES,
             seed: int = 0) -> Score:
    """The metric with a percentile bootstrap interval over rows (rows resampled with replacement)."""
    y, p = _arrays(labels, preds)
    fn = METRICS[metric]
    # Percentile, not BCa: BCa is undefined (nan) when every resample gives the same score.
    res = stats.bootstrap((y, p), fn, paired=True, vectorized=True, n_resamples=n_resamples,
                          confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed))
    return Score(float(fn(y, p)), float(res.confidence_interval.low), float(res.confidence_interval.high))


def mcnemar(labels: Sequence[int], champion: Sequence[int], challenger: Sequence[int]) -> McNemar:
    """McNemar's test on the rows where exactly one model is right.

    Exact binomial when few rows disagree, else chi-square with continuity correction.
    """
    y, a, b = _arrays(labels, champion, challenger)
    only_a = int(np.sum((a == y) & (b != y)))
    only_b = int(np.sum((a != y) & (b == y)))
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
                     n_resamples: int = RESAMPLES, seed: int = 0) -> tuple[Score, float]:
    """Challenger minus champion on `metric`, its interval, and a two-sided bootstrap p-value.

    Both models are scored on the same resampled rows, so row difficulty cancels out. The p-value is
    twice the share of resamples on the losing side of zero (capped at 1).
    """
    y, a, b = _arrays(labels, champion, challenger)
    fn = METRICS[metric]
    diff = lambda y, a, b, axis=-1: fn(y, b, axis) - fn(y, a, axis)  # noqa: E731
    res = stats.bootstrap((y, a, b), diff, paired=True, vectorized=True, n_resamples=n_resamples,
                          confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed))
    dist = res.bootstrap_distribution
    p = min(1.0, 2 * min(np.mean(dist <= 0), np.mean(dist >= 0)))
    ci = res.confidence_interval
    return Score(float(diff(y, a, b)), float(ci.low), float(ci.high)), float(p)


def compare(labels: Sequence[int], champion: Sequence[int] | None, challenger: Sequence[int], *,
            metric: Metric = "accuracy", margin: float = 0.0, min_scores: dict[str, float] | None = None,
            test: Literal["mcnemar", "bootstrap"] = "mcnemar", alpha: float = 0.05,
            n_resamples: int = RESAMPLES, seed: int = 0) -> GateResult:
    """Run every gate on the same test rows; `champion=None` (no champion yet) checks the floors only."""
    min_scores = min_scores or {}
    scored = lambda preds: {m: score_ci(labels, preds, m, n_resamples, seed) for m in METRICS}  # noqa: E731
    new = scored(challenger)
    checks = [Check(f"min test {m}", f">= {floor:.4f}", f"{new[m].value:.4f}", new[m].value >= floor)
              for m, floor in sorted(min_scores.items())]
    if champion is None:
        return GateResult(metric, None, new, None, test, None, "no champion to compare with", checks)
    old = scored(champion)
    difference, boot_p = paired_bootstrap(labels, champion, challenger, metric, n_resamples, seed)
    # A float margin like 0.01 is not exact in binary; round so "exactly one point better" passes.
    checks.append(Check(f"{metric} gain over champion", f">= {margin:+.4f}", f"{difference.value:+.4f}",
                        round(difference.value - margin, 10) >= 0 and difference.value > 0))
    if test == "mcnemar":
        m = mcnemar(labels, champion, challenger)
        p, detail = m.p_value, f"{m.method}: champion-only right {m.champion_only}, challenger-only {m.challenger_only}"
    else:
        p, detail = boot_p, f"paired bootstrap of the {metric} difference, {n_resamples} resamples"
    # Two-sided p, so the check also needs the challenger ahead: "significantly worse" must not pass.
    ahead = difference.value > 0
    checks.append(Check(f"significance ({'McNemar' if test == 'mcnemar' else 'paired bootstrap'})",
                        f"p < {alpha}, challenger ahead", f"p = {p:.4g}{'' if ahead else ', challenger not ahead'}",
                        p < alpha and ahead))
    return GateResult(metric, old, new, difference, test, p, detail, checks)
