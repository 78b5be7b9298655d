"""Any fine-tuned model folder behind one interface, for scoring (evaluate) and serving (the pyfunc).

    clf = load_classifier("artifacts/finetune/tfidf/model")
    clf.predict(["a gripping , funny film"])   # -> array([1]), label ids
    clf.label_names                            # -> ["negative", "positive"]

A model folder is either
- a transformers sequence classifier (config.json, weights, tokenizer): every Trainer strategy;
- a transformers token classifier (config.json `architectures` says so), for NER: loaded as a
  transferflow.token_classification.TokenTagger, whose predict answers entity spans per text; or
- a folder with `classifier.json` whose `kind` names an entry of LOADERS, beside the files it needs:
  `sklearn`           a scikit-learn pipeline from texts to label ids (classifier.skops): tfidf;
  `encoder_features`  a frozen encoder (encoder/) whose pooled hidden states of one layer feed a
                      scikit-learn classifier (classifier.skops): features;
  `peft`              a peft adapter that cannot be merged into weights (adapter/) beside its base
                      model (base/), tokenizer at the top: prefix;
  `prompt`            a causal LM (decoder/) scored on label words after a template and demonstrations
                      (transferflow/prompting.py): the gpt family's prompt, and its prompt + label
                      word head (scratch, full, lora);
  `text_to_text`      a seq2seq model (seq2seq/) that generates the label word
                      (transferflow/text_to_text.py): the t5 family's head (scratch, full, lora).
scikit-learn objects are stored with skops rather than pickle: loading runs no code from the file and
refuses any type beyond scikit-learn's defaults and TRUSTED.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from transferflow.anatomy import served_length
from transferflow.files import write_json

MANIFEST = "classifier.json"
SKOPS_FILE = "classifier.skops"
TRUSTED = ["sklearn.tree._tree.Tree"]
"""Types skops does not trust by default that our classifiers need (the random forest's trees)."""


class Classifier(Protocol):
    label_names: list[str]
    """Name of each label id, in id order."""

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Label ids, one per text."""


class TransformersClassifier:
    """A loaded sequence classifier and its tokenizer; `from_folder` reads a transformers folder."""

    def __init__(self, model, tokenizer, batch_size: int = 64):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        self.max_length = served_length(model, tokenizer)
        config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
        self.label_names = [config.id2label[i] for i in range(config.num_labels)]

    @classmethod
    def from_folder(cls, folder: Path, batch_size: int = 64) -> TransformersClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(folder)
        return cls(model, AutoTokenizer.from_pretrained(folder), batch_size)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        preds = [np.zeros(0, dtype=np.int64)]
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                preds.append(self.model(**batch).logits.argmax(-1).numpy())
        return np.concatenate(preds)


def pooled_hidden_states(encoder, tokenizer, texts: Sequence[str], pooling: str, max_length: int,
                         batch_size: int = 128) -> np.ndarray:
    """Every layer's hidden states pooled per text: shape (layers + 1, texts, hidden); 0 is the embeddings.

    `cls` takes the first token; `mean` averages the non-padding tokens. Hand-written: transformers'
    feature-extraction pipeline returns only the last layer, unpooled.
    """
    import torch

    pooled = []
    encoder.eval()  # dropout off: features must not depend on the call
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            states = torch.stack(encoder(**batch, output_hidden_states=True).hidden_states)  # (L+1, B, T, H)
            if pooling == "cls":
                pooled.append(states[:, :, 0].numpy())
            else:
                mask = batch["attention_mask"][None, :, :, None].to(states.dtype)
                pooled.append(((states * mask).sum(2) / mask.sum(2).clamp(min=1)).numpy())
    return np.concatenate(pooled, axis=1)


def save_sklearn(folder: Path, estimator, manifest: dict) -> None:
    """Store a fitted scikit-learn object with skops and the manifest that says how to load it."""
    import zipfile

    import skops.io

    folder.mkdir(parents=True, exist_ok=True)
    # Compressed: skops writes a TF-IDF vocabulary as verbose JSON (10 MB raw, 0.3 MB deflated).
    skops.io.dump(estimator, folder / SKOPS_FILE, compression=zipfile.ZIP_DEFLATED)
    write_json(folder / MANIFEST, manifest)


def _load_skops(path: Path):
    import skops.io

    return skops.io.load(path, trusted=TRUSTED)  # raises on any type not trusted


class SklearnClassifier:
    """kind `sklearn`: a pipeline that takes raw texts (e.g. TF-IDF + logistic regression)."""

    def __init__(self, folder: Path, manifest: dict, batch_size: int = 64):
        self.pipeline = _load_skops(folder / SKOPS_FILE)
        self.label_names = list(manifest["label_names"])

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.pipeline.predict(list(texts)), dtype=np.int64)


class EncoderFeaturesClassifier:
    """kind `encoder_features`: frozen encoder -> pooled hidden state of one layer -> scikit-learn head."""

    def __init__(self, folder: Path, manifest: dict, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        self.encoder = AutoModel.from_pretrained(folder / "encoder").eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder / "encoder")
        self.head = _load_skops(folder / SKOPS_FILE)
        self.layer, self.pooling = int(manifest["layer"]), manifest["pooling"]
        self.max_length = int(manifest["max_length"])
        self.label_names = list(manifest["label_names"])
        self.batch_size = batch_size

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros(0, dtype=np.int64)
        features = pooled_hidden_states(self.encoder, self.tokenizer, texts, self.pooling, self.max_length,
                                        self.batch_size)[self.layer]
        return np.asarray(self.head.predict(features), dtype=np.int64)


def save_classifier(model, folder: Path) -> None:
    """Write a trained transformers classifier as a model folder (the tokenizer is added by the caller).

    A plain model is saved as is. A peft model that could not be merged (prefixes are extra attention
    inputs, not weight updates) is saved as its base model (base/, wrapper-free weights) beside the
    adapter (adapter/, which carries the trained head as modules_to_save), kind `peft`.
    """
    folder = Path(folder)
    if not hasattr(model, "peft_config"):
        model.save_pretrained(folder)
        return
    base = model.get_base_model()
    # modules_to_save wraps the head: keep its original weights under the plain names (the trained
    # copy lives in the adapter), so the base loads with no peft in the way.
    state = {k.replace(".original_module.", "."): v for k, v in base.state_dict().items()
             if ".modules_to_save." not in k}
    base.save_pretrained(folder / "base", state_dict=state)
    model.save_pretrained(folder / "adapter")
    write_json(folder / MANIFEST, {"kind": "peft"})


def _load_peft(folder: Path, manifest: dict, batch_size: int = 64) -> TransformersClassifier:
    from peft import PeftModel  # imported on use: peft is slow to import
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = AutoModelForSequenceClassification.from_pretrained(folder / "base")
    model = PeftModel.from_pretrained(base, folder / "adapter")
    return TransformersClassifier(model, AutoTokenizer.from_pretrained(folder), batch_size)


def _load_prompt(folder: Path, manifest: dict, batch_size: int = 64):
    from transferflow.prompting import PromptClassifier  # imported on use, like every family's model

    return PromptClassifier.from_folder(folder, manifest, batch_size)


def _load_text_to_text(folder: Path, manifest: dict, batch_size: int = 64):
    from transferflow.text_to_text import TextToTextClassifier

    return TextToTextClassifier.from_folder(folder, manifest, batch_size)


LOADERS = {"sklearn": SklearnClassifier, "encoder_features": EncoderFeaturesClassifier, "peft": _load_peft,
           "prompt": _load_prompt, "text_to_text": _load_text_to_text}
"""Folder kinds named by `classifier.json`; a new kind is one class and one entry here."""


def load_classifier(folder: str | Path, batch_size: int = 64) -> Classifier:
    """The classifier stored in `folder`, whatever strategy wrote it."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("kind") not in LOADERS:
            raise ValueError(f"{folder / MANIFEST}: unknown kind {manifest.get('kind')!r}; known: {', '.join(LOADERS)}")
        return LOADERS[manifest["kind"]](folder, manifest, batch_size)
    if (folder / "config.json").is_file():
        from transferflow import token_classification as tc  # imported on use: only a ner folder needs the tagger

        if tc.is_token_classifier_folder(folder):
            return tc.TokenTagger.from_folder(folder, batch_size=batch_size)
        return TransformersClassifier.from_folder(folder, batch_size=batch_size)
    raise FileNotFoundError(f"{folder} holds no model: neither a transformers folder nor a {MANIFEST}")
