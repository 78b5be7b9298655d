"""seqeval: entity-level precision, recall and F1 of BIO tag sequences, plus token accuracy. An
`evaluate` module loaded from this folder (no hub download); the same answers as the hub's `seqeval`.

Default mode is conlleval's, the one CoNLL-2003 results are reported in: an `I-X` that does not follow
an `X` tag starts a new entity. An entity counts as right only when its type and both ends are right.
"""

import warnings

import datasets
import evaluate
import seqeval.scheme
from seqeval.metrics import accuracy_score, classification_report


class Seqeval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Entity-level precision, recall, F1 (micro over entities, and per entity type) and "
                        "token accuracy of tag sequences, computed by the seqeval package.",
            citation="Hiroki Nakayama, seqeval: A Python framework for sequence labeling evaluation, 2018.",
            inputs_description="predictions, references: one list of tag strings (e.g. B-PER, I-PER, O) per "
                               "sentence; scheme and mode as in seqeval.metrics.classification_report.",
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("string")),
                "references": datasets.Sequence(datasets.Value("string")),
            }),
        )

    def _compute(self, predictions, references, scheme=None, mode=None, zero_division=0):
        with warnings.catch_warnings():  # numpy warns on the macro average of zero entity types
            warnings.simplefilter("ignore", RuntimeWarning)
            report = classification_report(references, predictions, output_dict=True, zero_division=zero_division,
                                           mode=mode, scheme=getattr(seqeval.scheme, scheme) if scheme else None)
        overall = report.pop("micro avg")
        report.pop("macro avg", None)
        report.pop("weighted avg", None)
        scores = {kind: {"precision": float(r["precision"]), "recall": float(r["recall"]), "f1": float(r["f1-score"]),
                         "number": int(r["support"])} for kind, r in report.items()}
        return scores | {"overall_precision": float(overall["precision"]), "overall_recall": float(overall["recall"]),
                         "overall_f1": float(overall["f1-score"]),
                         "overall_accuracy": float(accuracy_score(references, predictions))}
