"""The registered model: an MLflow pyfunc that answers `predict(list of texts)` with label names.

Packaged with `code_paths`, so `mlflow.pyfunc.load_model("models:/<name>@champion")` works in a fresh
process that has torch, transformers, scikit-learn, skops and mlflow, offline. Whatever strategy won,
its model folder is read by transferflow.models.load_classifier, the same loader evaluate scores with.
"""

from __future__ import annotations

import mlflow.pyfunc


class TextClassifier(mlflow.pyfunc.PythonModel):
    """Any strategy's model folder (artifact `model`) behind a texts -> label names interface."""

    batch_size = 64

    def load_context(self, context):
        from transferflow.models import load_classifier  # shipped with the model (code_paths)

        self.classifier = load_classifier(context.artifacts["model"], self.batch_size)

    def predict(self, context, model_input: list[str], params: dict | None = None) -> list[str]:
        ids = self.classifier.predict(list(model_input))
        return [self.classifier.label_names[i] for i in ids]
