"""The registered model: an MLflow pyfunc that answers `predict(list of texts)` with label names.

Packaged with `code_paths`, so `mlflow.pyfunc.load_model("models:/<name>@champion")` works in a fresh
process that has torch, transformers and mlflow, offline.
"""

from __future__ import annotations

import mlflow.pyfunc


class TextClassifier(mlflow.pyfunc.PythonModel):
    """A transformers sequence classifier (artifact `model`) behind a texts -> labels interface."""

    batch_size = 64

    def load_context(self, context):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = context.artifacts["model"]
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder).eval()

    def predict(self, context, model_input: list[str], params: dict | None = None) -> list[str]:
        import torch

        labels: list[str] = []
        with torch.no_grad():
            for start in range(0, len(model_input), self.batch_size):
                batch = self.tokenizer(list(model_input[start:start + self.batch_size]), padding=True,
                                       truncation=True, max_length=self.model.config.max_position_embeddings,
                                       return_tensors="pt")
                ids = self.model(**batch).logits.argmax(-1).tolist()
                labels.extend(self.model.config.id2label[i] for i in ids)
        return labels
