"""Classification as text-to-text with an encoder-decoder (t5 family): the label is generated as a word.

    clf = load_classifier("artifacts/finetune/text_to_text/model")     # kind `text_to_text`
    clf.predict(["a gripping , funny film"])                           # -> array([1])

The input is the template filled with the text (`Review: {text}\\nSentiment:`); the target is the
label's word (`positive`). At prediction time the model generates greedily and the decoded text is
mapped back to a label by exact match (case and surrounding spaces ignored); anything else is
UNANSWERED (-1), which every score counts as wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from transferflow.files import write_json
from transferflow.prompting import render

KIND = "text_to_text"
UNANSWERED = -1
"""Label id of a generated text that is none of the label words."""


def seq2seq_features(tokenizer, template: str, words: Sequence[str], max_length: int):
    """Dataset.map function: input ids of the filled template, label ids of the answer word (+ </s>)."""
    def encode(batch):
        inputs = tokenizer([render(template, t) for t in batch["text"]], truncation=True, max_length=max_length)
        inputs["labels"] = tokenizer([words[y] for y in batch["label"]])["input_ids"]
        return inputs

    return encode


def words_to_ids(generated: Sequence[str], words: Sequence[str]) -> np.ndarray:
    index = {w.strip().lower(): i for i, w in enumerate(words)}
    return np.array([index.get(g.strip().lower(), UNANSWERED) for g in generated], dtype=np.int64)


def generate_label_ids(model, tokenizer, texts: Sequence[str], template: str, words: Sequence[str], max_length: int,
                       batch_size: int = 64) -> np.ndarray:
    """Greedy generation for every text, mapped back to label ids (UNANSWERED for anything else): how a
    text_to_text model classifies, when served and when its checkpoints are compared during training."""
    import torch

    # room for the longest label word and </s>; the model may still write something else
    max_new_tokens = max(len(tokenizer(w)["input_ids"]) for w in words) + 1
    answers: list[str] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            chunk = [render(template, t) for t in texts[start:start + batch_size]]
            batch = tokenizer(chunk, padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt").to(model.device)
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
            answers += tokenizer.batch_decode(out, skip_special_tokens=True)
    return words_to_ids(answers, words)


class TextToTextClassifier:
    """kind `text_to_text`: a seq2seq model, its template and label words; built from a model in memory
    (how fine-tuning scores its checkpoints) or read from a folder (`from_folder`: seq2seq/ and the manifest)."""

    def __init__(self, model, tokenizer, template: str, words: Sequence[str], label_names: Sequence[str],
                 max_length: int, batch_size: int = 64):
        self.model, self.tokenizer = model, tokenizer
        self.template, self.words, self.label_names = template, list(words), list(label_names)
        self.max_length, self.batch_size = int(max_length), batch_size

    @classmethod
    def from_folder(cls, folder: Path, manifest: dict, batch_size: int = 64) -> TextToTextClassifier:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        return cls(AutoModelForSeq2SeqLM.from_pretrained(folder / "seq2seq").eval(),
                   AutoTokenizer.from_pretrained(folder / "seq2seq"), manifest["template"], manifest["label_words"],
                   manifest["label_names"], manifest["max_length"], batch_size)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return generate_label_ids(self.model, self.tokenizer, list(texts), self.template, self.words,
                                  self.max_length, self.batch_size)


def save_text_to_text(folder: Path, model, tokenizer, template: str, label_words: Sequence[str],
                      label_names: Sequence[str], max_length: int) -> None:
    """Write a kind `text_to_text` model folder that transferflow.models.load_classifier reads."""
    model.save_pretrained(folder / "seq2seq")
    tokenizer.save_pretrained(folder / "seq2seq")
    write_json(folder / "classifier.json", {"kind": KIND, "template": template, "label_words": list(label_words),
                                            "label_names": list(label_names), "max_length": max_length})
