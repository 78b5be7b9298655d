"""NER (prepare.task_type ner): the CoNLL loader, word pieces aligned to word tags, entity spans, the
per-sentence promotion gate, and the pipeline at toy size from prepare to a served model's spans."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.conftest import REPO, make_workspace
from tests.helpers import predict_in_fresh_process, set_params
from transferflow.config import PrepareParams, TokenizerParams
from transferflow.data import DataError, load_conll
from transferflow.token_classification import (align_tags, encode_tagged, entity_spans, sentence_outcomes,
                                               spans_to_tags, tag_scores)

CONLL = REPO / "data" / "conll2003"
TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
MODEL = "ner-e2e"


def test_loader_reads_the_standard_conll_splits():
    task = load_conll(str(CONLL), TAGS)
    # data/conll2003/README.md: sentence and token counts of the standard split, -DOCSTART- dropped
    assert {s: len(task[s]) for s in task} == {"train": 14041, "validation": 3250, "test": 3453}
    assert sum(map(len, task["train"]["tokens"])) == 203621
    assert task["train"].features["tags"].feature.names == TAGS
    first = task["train"][0]
    assert first["tokens"][:3] == ["EU", "rejects", "German"]
    assert [TAGS[t] for t in first["tags"][:3]] == ["B-ORG", "O", "B-MISC"]


@pytest.mark.parametrize("line, message", [
    ("Peter NNP B-NP\n", r"train.txt:4: expected 4 columns \(word ... tag\), found 3"),
    ("Peter NNP B-NP B-PERSON\n", r"train.txt:4: unknown tag 'B-PERSON'"),
])
def test_loader_names_the_corrupt_line(tmp_path, line, message):
    for name in ("train.txt", "valid.txt", "test.txt"):
        (tmp_path / name).write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n")
    (tmp_path / "train.txt").write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n" + line)
    with pytest.raises(DataError, match=message):
        load_conll(str(tmp_path), TAGS)
    (tmp_path / "test.txt").unlink()
    with pytest.raises(DataError, match="test.txt"):
        load_conll(str(tmp_path), TAGS)


def test_ner_label_names_must_be_bio_tags():
    assert PrepareParams(task_type="ner", label_names=TAGS).label_names == TAGS
    for bad in (["negative", "positive"], ["O", "B-PER"], ["B-PER", "I-PER"], ["O", "O", "B-X", "I-X"]):
        with pytest.raises(ValueError, match="label_names"):
            PrepareParams(task_type="ner", label_names=bad)


def test_tags_go_to_the_first_word_piece_only():
    import datasets

    from transferflow.tokenizers import wordpiece

    tokenizer = wordpiece(["peter blackburn visited brussels"] * 3, TokenizerParams(vocab_size=100, min_frequency=1))
    enc = tokenizer([["Peter", "Blackburns", "."]], is_split_into_words=True)
    word_ids = enc.word_ids(0)
    assert word_ids[0] is None and word_ids[-1] is None and word_ids.count(1) > 1  # split into pieces
    labels = align_tags(word_ids, [1, 2, 0])
    firsts = [i for i, w in enumerate(word_ids) if w is not None and w != word_ids[i - 1]]
    assert [labels[i] for i in firsts] == [1, 2, 0]
    assert all(label == -100 for i, label in enumerate(labels) if i not in firsts)

    task = datasets.DatasetDict(train=datasets.Dataset.from_dict(
        {"tokens": [["Peter", "Blackburns", "."]], "tags": [[1, 2, 0]], "text": ["Peter Blackburns ."]}))
    encoded = encode_tagged(task, tokenizer, max_length=4)  # [CLS] + 2 pieces + [SEP]: cut mid-word
    assert {"input_ids", "labels"} <= set(encoded["train"].column_names)
    assert not {"tokens", "tags", "text"} & set(encoded["train"].column_names)
    assert encoded["train"][0]["labels"] == [-100, 1, 2, -100]


def test_spans_from_tags_and_back():
    text = "EU  rejects German call to boycott British lamb ."
    tags = ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "I-MISC", "O"]
    spans = entity_spans(text, tags)
    assert spans == [{"entity": "ORG", "start": 0, "end": 2, "text": "EU"},
                     {"entity": "MISC", "start": 12, "end": 18, "text": "German"},
                     {"entity": "MISC", "start": 35, "end": 47, "text": "British lamb"}]
    assert spans_to_tags(text, spans) == tags
    # conlleval's reading, as seqeval scores it: an I- tag with no entity before it starts one
    assert entity_spans("Peter Blackburn", ["I-PER", "I-PER"]) == [
        {"entity": "PER", "start": 0, "end": 15, "text": "Peter Blackburn"}]
    assert entity_spans("", []) == [] and spans_to_tags("", []) == []


def test_gate_counts_per_sentence_agree_with_seqeval():
    from transferflow import gate

    rng = np.random.default_rng(0)
    gold = [[TAGS[t] for t in rng.integers(0, len(TAGS), rng.integers(1, 12))] for _ in range(200)]
    pred = [[t if rng.random() < 0.8 else TAGS[rng.integers(0, len(TAGS))] for t in s] for s in gold]
    labels, outcomes = sentence_outcomes(gold, pred)
    expected = tag_scores(pred, gold)[0]
    for metric in ("accuracy", "f1"):
        assert gate.NER.metrics[metric](labels, outcomes) == pytest.approx(expected[metric])
    # a perfect challenger against the noisy champion: every check passes, McNemar counts sentences
    _, perfect = sentence_outcomes(gold, gold)
    result = gate.compare(labels, outcomes, perfect, metric="f1", scoring=gate.NER, n_resamples=200)
    assert result.promote and result.challenger["f1"].value == 1.0
    assert "sentences" in result.test_detail and result.difference.low > 0


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_ner_pipeline_end_to_end(pretrained_workspace, tmp_path, monkeypatch):
    """prepare (ner) -> finetune full and lora -> evaluate -> register -> promote -> spans from a fresh
    process. The tokenizer and the encoder are the shared smoke ones: the corpus they were trained on
    does not depend on the task, so prepare in ner mode leaves them as they are."""
    from mlflow.tracking import MlflowClient

    from tasks import evaluate, finetune, prepare, promote, register
    from transferflow.config import load_params

    root = make_workspace(tmp_path / "ws")
    monkeypatch.chdir(root)
    set_params(root / "params.yaml",
               prepare={"task_type": "ner", "task_source": "data/conll2003", "label_names": TAGS,
                        "max_train_rows": 300, "validation_size": 100, "max_test_rows": 100},
               finetune={"strategies": ["full", "lora"], "metric": "f1"},
               register={"model_name": MODEL, "metric": "f1"},
               promote={"metric": "f1", "min_scores": {"f1": 0.0}})
    params = load_params("params.yaml")
    card = prepare.main(params)
    assert card["task"]["splits"]["test"]["sentences"] == 100
    assert card["task"]["test_sentences_in_train"]["sentences"] > 0  # reported, not refused
    for stage in ("tokenizer", "pretrain"):
        shutil.copytree(pretrained_workspace / "artifacts" / stage, root / "artifacts" / stage)

    for strategy in params.finetune.strategies:
        summary = finetune.main(params, strategy)
        assert 0 <= summary["validation"]["f1"] <= 1 and summary["validation"]["accuracy"] > 0
    rows = evaluate.main(params)
    assert {r["strategy"] for r in rows} == {"full", "lora"}
    for r in rows:
        assert all(0 <= r[f"test_{m}"] <= 1 for m in ("accuracy", "precision", "recall", "f1"))
    assert "test entity F1 by type: LOC" in (root / "artifacts/evaluate/leaderboard.md").read_text()
    confusion = (root / "plots/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 1 + card["task"]["splits"]["test"]["tokens"]

    first = register.main(params)
    assert set(first["aliases"]) == {"challenger", "champion"}
    client = MlflowClient()
    assert "token accuracy" in client.get_model_version(MODEL, first["version"]).description
    second = register.main(params)  # the same model again: the gate must refuse it (no gain)
    judged = promote.main(params)
    assert judged["decision"] == "refused" and judged["challenger"] == str(second["version"])
    assert "sentences (right: predicted entity set equals the gold set)" in judged["table"]

    texts = ["EU rejects German call to boycott British lamb .", "Peter Blackburn", ""]
    answers = predict_in_fresh_process(f"models:/{MODEL}@champion", texts)
    assert len(answers) == len(texts) and answers[2] == []
    for text, spans in zip(texts, answers):
        for span in spans:
            assert span["entity"] in {"PER", "ORG", "LOC", "MISC"} and text[span["start"]:span["end"]] == span["text"]
