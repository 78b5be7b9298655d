"""Metrics through `evaluate`, offline.

`evaluate.load("accuracy")` fetches its script from the hub. `evaluate.load` also takes a local
folder holding `<name>.py` (its own module mechanism), so each metric here is such a folder and is
loaded by path: same API, same caching, no network.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).parent


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load a metric shipped with transferflow by name (accuracy, precision, recall, f1, perplexity)."""
    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        shipped = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"no offline metric {name!r}; shipped: {', '.join(shipped)}")
    return evaluate.load(str(folder))


def classification_scores(predictions, references) -> dict[str, float]:
    """Accuracy plus macro-averaged precision, recall and F1 (macro: every class counts the same)."""
    scores = load_metric("accuracy").compute(predictions=predictions, references=references)
    for name in ("precision", "recall", "f1"):
        scores |= load_metric(name).compute(predictions=predictions, references=references, average="macro")
    return scores
