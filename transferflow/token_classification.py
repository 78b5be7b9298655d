"""Token classification (NER, prepare.task_type ner): words in, one BIO tag per word out.

    tagger = load_classifier("artifacts/finetune/full/model")      # a TokenTagger for a NER folder
    tagger.predict(["EU rejects German call"])
    # -> [[{"entity": "ORG", "start": 0, "end": 2, "text": "EU"}, {"entity": "MISC", "start": 11, ...}]]
    tagger.predict_tags([["EU", "rejects", "German", "call"]])    # -> [["B-ORG", "O", "B-MISC", "O"]]

Words are whitespace-separated (CoNLL's tokens; a served text is split on whitespace). A word's tag is
read from its first word piece, as in BERT's NER experiments: in training the later pieces get label
-100, which the loss ignores. Spans and scores come from seqeval's entity reading of the tags.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities

from transferflow.anatomy import served_length

if TYPE_CHECKING:  # the served model imports this module, and needs neither datasets nor evaluate
    import datasets

TAGS = "tags"
"""Column of a prepared NER split holding the tag ids (beside `tokens` and `text`, the words joined)."""
IGNORE = -100
"""Label of the positions the loss skips (torch's cross-entropy ignore_index, Trainer's convention)."""


def is_tagging(split: datasets.Dataset) -> bool:
    """Whether a prepared split is a NER task (tags per word) rather than one label per text."""
    return TAGS in split.column_names


def is_token_classifier(architecture: str) -> bool:
    """Whether a transformers class name (config.json `architectures`) is a token classifier."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES

    return architecture in MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES.values()


def is_token_classifier_folder(folder: Path) -> bool:
    config = Path(folder) / "config.json"
    return config.is_file() and any(map(is_token_classifier, json.loads(config.read_text()).get("architectures") or []))


def align_tags(word_ids: Sequence[int | None], tags: Sequence[int]) -> list[int]:
    """Labels per word piece: the word's tag on its first piece, IGNORE on later pieces and special tokens.

    Hand-written (as in transformers' token-classification example): no library function does it.
    """
    labels, previous = [], None
    for word in word_ids:
        labels.append(tags[word] if word is not None and word != previous else IGNORE)
        previous = word
    return labels


def encode_tagged(task: datasets.DatasetDict, tokenizer, max_length: int) -> datasets.DatasetDict:
    """Word pieces and aligned labels; words past `max_length` pieces are cut (their tags unseen in training)."""
    def encode(batch):
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        enc["labels"] = [align_tags(enc.word_ids(i), tags) for i, tags in enumerate(batch[TAGS])]
        return enc

    return task.map(encode, batched=True, remove_columns=next(iter(task.values())).column_names)


def tag_scores(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> tuple[dict, dict]:
    """(overall, per entity type) through the `seqeval` evaluate module. Overall uses the leaderboard's
    keys: accuracy = token accuracy; precision, recall, f1 = entity-level, micro over entities."""
    from transferflow.metrics import load_metric  # evaluate: scoring only, not serving

    raw = load_metric("seqeval").compute(predictions=[list(p) for p in predictions],
                                         references=[list(r) for r in references])
    overall = {k: raw[f"overall_{k}"] for k in ("accuracy", "precision", "recall", "f1")}
    return overall, {k: v for k, v in raw.items() if isinstance(v, dict)}


def trainer_metrics(tag_names: list[str]):
    """compute_metrics for Trainer: logits and IGNORE-padded labels -> tag_scores' overall scores."""
    def compute(eval_pred) -> dict[str, float]:
        logits, labels = eval_pred
        preds, keep = np.argmax(logits, axis=-1), labels != IGNORE  # one kept position per (seen) word
        to_tags = lambda ids, mask: [tag_names[i] for i in ids[mask]]  # noqa: E731
        return tag_scores([to_tags(p, k) for p, k in zip(preds, keep)],
                          [to_tags(y, k) for y, k in zip(labels, keep)])[0]

    return compute


def word_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each whitespace-separated word."""
    return [m.span() for m in re.finditer(r"\S+", text)]


def entity_spans(text: str, tags: Sequence[str]) -> list[dict]:
    """Entities of one text from its word tags: {entity, start, end, text}, offsets in characters."""
    offsets = word_offsets(text)
    spans = []
    for kind, first, last in get_entities(list(tags)):
        start, end = offsets[first][0], offsets[last][1]
        spans.append({"entity": kind, "start": start, "end": end, "text": text[start:end]})
    return spans


def spans_to_tags(text: str, spans: Sequence[dict]) -> list[str]:
    """Word tags (IOB2) from entity spans: the inverse of entity_spans, for scoring a served model."""
    offsets = word_offsets(text)
    first_word = {start: i for i, (start, _) in enumerate(offsets)}
    last_word = {end: i for i, (_, end) in enumerate(offsets)}
    tags = ["O"] * len(offsets)
    for span in spans:
        first, last = first_word[span["start"]], last_word[span["end"]]
        tags[first:last + 1] = [f"B-{span['entity']}"] + [f"I-{span['entity']}"] * (last - first)
    return tags


def sentence_outcomes(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Per sentence, the counts the promotion gate resamples (transferflow/gate.py, NER):
    gold rows (entities, words); prediction rows (predicted entities, correct entities, correct words,
    exact: 1 when the predicted entity set equals the gold set, the sentence-level "right" of McNemar)."""
    gold_rows, pred_rows = [], []
    for g, p in zip(gold, pred, strict=True):
        truth, guess = set(get_entities(list(g))), set(get_entities(list(p)))
        gold_rows.append((len(truth), len(g)))
        pred_rows.append((len(guess), len(truth & guess), sum(a == b for a, b in zip(g, p)), int(truth == guess)))
    return np.array(gold_rows, dtype=np.int64).T.reshape(2, -1), np.array(pred_rows, dtype=np.int64).T.reshape(4, -1)


class TokenTagger:
    """A loaded token classifier and its tokenizer, behind the classifier interface of transferflow.models:
    `predict(texts)` answers entity spans per text; `predict_tags(words per sentence)` the tag per word."""

    task_type = "ner"

    def __init__(self, model, tokenizer, batch_size: int = 64):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        self.max_length = served_length(model, tokenizer)  # windows as long as training's
        self.label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @classmethod
    def from_folder(cls, folder: Path, batch_size: int = 64) -> TokenTagger:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        return cls(AutoModelForTokenClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
                   batch_size)

    def predict_tags(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One tag per word. A sentence longer than the model's positions is cut into consecutive windows
        by the tokenizer (return_overflowing_tokens), so every word gets a tag."""
        import torch

        tags: list[list[str]] = [["O"] * len(words) for words in sentences]
        todo = [i for i, words in enumerate(sentences) if len(words)]
        with torch.no_grad():
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start:start + self.batch_size]
                enc = self.tokenizer([list(sentences[i]) for i in batch], is_split_into_words=True, truncation=True,
                                     max_length=self.max_length, return_overflowing_tokens=True, padding=True,
                                     return_tensors="pt")
                owners = enc.pop("overflow_to_sample_mapping").tolist()
                best = self.model(**enc).logits.argmax(-1).tolist()
                tagged: set[tuple[int, int]] = set()  # (sentence, word): the first piece decides
                for row, owner in enumerate(owners):
                    sentence = batch[owner]
                    for position, word in enumerate(enc.word_ids(row)):
                        if word is not None and (sentence, word) not in tagged:
                            tagged.add((sentence, word))
                            tags[sentence][word] = self.label_names[best[row][position]]
        return tags

    def predict(self, texts: Sequence[str]) -> list[list[dict]]:
        texts = list(texts)
        words = [[text[start:end] for start, end in word_offsets(text)] for text in texts]  # the spans' words
        return [entity_spans(text, tags) for text, tags in zip(texts, self.predict_tags(words))]
