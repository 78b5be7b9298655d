"""The registered model: an MLflow pyfunc that answers `predict(list of texts)` with label names, or for
a ner model (EntityTagger) with the entity spans of each text.

Logged as models-from-code (transferflow/served/*.py: the registry holds no pickle, as the scikit-learn
models are stored with skops for the same reason) and packaged with `code_paths`, so
`mlflow.pyfunc.load_model("models:/<name>@champion")` works in a fresh process that has torch,
transformers, scikit-learn, skops and mlflow, offline. Whatever strategy won, its model folder is read
by transferflow.models.load_classifier, the same loader evaluate scores with.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import mlflow.pyfunc
from pydantic import BaseModel


NO_LABEL = ""
"""The answer for a text the model gives no label to (a t5 model that generated none of the label words)."""
SERVED = Path(__file__).resolve().parent / "served"
"""The models-from-code files, one per interface."""
EXAMPLE = ["a gripping , funny film", "a dull , lifeless mess"]
NER_EXAMPLE = ["EU rejects German call to boycott British lamb .", "Peter Blackburn"]
REQUIREMENTS = ("mlflow", "torch", "transformers", "peft", "scikit-learn", "skops", "seqeval")
"""Every library transferflow/models.py may load a winner with (peft: prefix; skops: tfidf, features;
seqeval: ner spans), pinned to the versions installed here."""


def pyfunc_arguments(folder: str | Path) -> dict:
    """Arguments of mlflow.pyfunc.log_model (or save_model) that store a model folder as the served model.
    A ner folder (a token classifier) answers entity spans, any other one label names."""
    from transferflow.token_classification import is_token_classifier_folder

    ner = is_token_classifier_folder(Path(folder))
    # Models-from-code rather than an instance: MLflow loads an instance to infer its signature and then
    # cloudpickles it, loaded model and all (a ModernBERT that ran with output_hidden_states holds a
    # ContextVar, which does not pickle at all).
    return dict(python_model=str(SERVED / ("tagger.py" if ner else "classifier.py")),
                artifacts={"model": str(folder)}, code_paths=[str(Path(__file__).resolve().parent)],
                input_example=NER_EXAMPLE if ner else EXAMPLE,
                pip_requirements=[f"{pkg}=={version(pkg)}" for pkg in REQUIREMENTS])


class TextClassifier(mlflow.pyfunc.PythonModel):
    """Any strategy's model folder (artifact `model`) behind a texts -> label names interface."""

    batch_size = 64

    def load_context(self, context):
        from transferflow.models import load_classifier  # shipped with the model (code_paths)

        self.classifier = load_classifier(context.artifacts["model"], self.batch_size)

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
