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
    """Load a metric shipped with transferflow by name (accuracy, precision, recall, f1, perplexity, seqeval)."""
    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        shipped = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"no offline metric {name!r}; shipped: {', '.join(shipped)}")
    return evaluate.load(str(folder))


def classification_scores(predictions, references) -> dict[str, float]:
    """Accuracy plus macro-averaged precision, recall and F1 (macro: every class counts the same).

    A prediction of -1 (a generated text that is no label, transferflow/text_to_text.py) is wrong, and
    is not a class of its own in the macro average.
    """
    predictions, references = [int(p) for p in predictions], [int(r) for r in references]
    classes = sorted({*predictions, *references} - {-1})
    scores = load_metric("accuracy").compute(predictions=predictions, references=references)
    for name in ("precision", "recall", "f1"):
        scores |= load_metric(name).compute(predictions=predictions, references=references, average="macro",
                                            labels=classes)
    return scores
