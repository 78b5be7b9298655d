"""Precision: true positives over predicted positives. An `evaluate` module loaded from this folder, so no hub download is needed."""

import datasets
import evaluate
from sklearn.metrics import precision_score


class Precision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Precision: true positives over predicted positives.",
            citation="",
            inputs_description="predictions, references: integer class ids; average as in scikit-learn.",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, average="binary", pos_label=1, labels=None):
        score = precision_score(references, predictions, average=average, pos_label=pos_label, labels=labels, zero_division=0)
        return {"precision": score.tolist() if average is None else float(score)}
