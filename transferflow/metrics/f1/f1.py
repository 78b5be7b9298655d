"""F1: harmonic mean of precision and recall. An `evaluate` module loaded from this folder, so no hub download is needed."""

import datasets
import evaluate
from sklearn.metrics import f1_score


class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="F1: harmonic mean of precision and recall.",
            citation="",
            inputs_description="predictions, references: integer class ids; average as in scikit-learn.",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, average="binary", pos_label=1, labels=None):
        score = f1_score(references, predictions, average=average, pos_label=pos_label, labels=labels, zero_division=0)
        return {"f1": score.tolist() if average is None else float(score)}
