"""The validation carve: whole texts only, and none of their phrases left in train (SST-2's layout)."""

from __future__ import annotations

import datasets
import pytest

from tasks.prepare import carve_validation, parts_of_other_texts, word_runs
from transferflow.config import PrepareParams
from transferflow.data import DataError

WORDS = "a good bad film plot cast score".split()


def phrase_treebank(sentences: int = 40) -> datasets.Dataset:
    """Rows as SST-2 lays them out: each sentence, and beside it some of its phrases, same label."""
    texts, labels = [], []
    for i in range(sentences):
        words = [f"{WORDS[k]}{i}" for k in range(7)]  # no phrase shared between sentences
        for phrase in (words, words[:3], words[2:5], words[4:]):
            texts.append(" ".join(phrase))
            labels.append(i % 2)
    return datasets.Dataset.from_dict({"text": texts, "label": labels},
                                      features=datasets.Features(text=datasets.Value("string"),
                                                                 label=datasets.ClassLabel(names=["neg", "pos"])))


def params(**fields) -> PrepareParams:
    return PrepareParams(label_names=["neg", "pos"], validation_size=10, **fields)


def test_parts_are_word_runs_of_a_longer_text():
    assert list(word_runs("a b c")) == ["a", "a b", "a b c", "b", "b c", "c"]
    assert parts_of_other_texts(["a film", "a film numbered 10", "numbered 1", "film numbered"]) == \
        {"a film", "film numbered"}  # "numbered 1" is no run of words of "numbered 10"


def test_validation_holds_whole_texts_and_train_none_of_their_phrases():
    rows = phrase_treebank()
    train, validation, dropped = carve_validation(rows, params())
    whole = {t for t in rows["text"] if t not in parts_of_other_texts(rows["text"])}
    assert len(validation) == 10 and set(validation["text"]) <= whole
    assert sorted(validation["label"]).count(0) == 5  # stratified
    inside = {run for text in validation["text"] for run in word_runs(text)}
    assert not inside & set(train["text"])
    assert dropped == 30 and len(train) + len(validation) + dropped == len(rows)  # 3 phrases per sentence


def test_the_plain_carve_on_request_and_on_data_without_parts():
    rows = phrase_treebank()
    train, validation, dropped = carve_validation(rows, params(validation_whole_texts=False))
    assert (len(train), len(validation), dropped) == (150, 10, 0)
    sentences = rows.filter(lambda r: len(r["text"].split()) == 7)
    (train, validation, _), (plain_train, plain_validation, _) = (
        carve_validation(sentences, params(validation_whole_texts=whole)) for whole in (True, False))
    assert validation["text"] == plain_validation["text"] and set(train["text"]) == set(plain_train["text"])


def test_too_few_whole_texts_is_one_named_error():
    with pytest.raises(DataError, match=r"validation_size \(50\) must be below the 40 train texts"):
        carve_validation(phrase_treebank(), PrepareParams(label_names=["neg", "pos"], validation_size=50))
