"""The registered model: an MLflow pyfunc that answers `predict(list of texts)` with label names, or for
a ner model (EntityTagger) with the entity spans of each text.

Packaged with `code_paths`, so `mlflow.pyfunc.load_model("models:/<name>@champion")` works in a fresh
process that has torch, transformers, scikit-learn, skops and mlflow, offline. Whatever strategy won,
its model folder is read by transferflow.models.load_classifier, the same loader evaluate scores with.
"""

from __future__ import annotations

import mlflow.pyfunc
from pydantic import BaseModel


NO_LABEL = ""
"""The answer for a text the model gives no label to (a t5 model that generated none of the label words)."""


class TextClassifier(mlflow.pyfunc.PythonModel):
    """Any strategy's model folder (artifact `model`) behind a texts -> label names interface."""

    batch_size = 64

    def load_context(self, context):
        from transferflow.models import load_classifier  # shipped with the model (code_paths)

        self.classifier = load_classifier(context.artifacts["model"], self.batch_size)

    def __getstate__(self) -> dict:
        # MLflow calls load_context on this very instance (to infer the signature from the input
        # example) and then cloudpickles it into python_model.pkl. The loaded model stays out: its
        # weights are the `model` artifact already, and a ModernBERT that has run with
        # output_hidden_states holds a ContextVar, which does not pickle at all.
        return {k: v for k, v in self.__dict__.items() if k != "classifier"}

    def predict(self, context, model_input: list[str], params: dict | None = None) -> list[str]:
        ids = self.classifier.predict(list(model_input))
        # -1: a text-to-text model generated no label word; answered as NO_LABEL rather than a guess
        return [self.classifier.label_names[i] if i >= 0 else NO_LABEL for i in ids]


class EntitySpan(BaseModel):
    """One entity found in a text; the type hint MLflow turns into the ner model's output schema."""

    entity: str
    """Entity type, e.g. PER, LOC, ORG, MISC."""
    start: int
    """Character offset of its first character in the text."""
    end: int
    """Character offset just past its last character: text[start:end] is the mention."""
    text: str
    """The mention itself."""


class EntityTagger(TextClassifier):
    """A ner model folder (a token classifier) behind a texts -> entity spans interface. Texts are split
    on whitespace into words, as the training sentences were."""

    def predict(self, context, model_input: list[str], params: dict | None = None) -> list[list[EntitySpan]]:
        return self.classifier.predict(list(model_input))  # TokenTagger: a list of span dicts per text
