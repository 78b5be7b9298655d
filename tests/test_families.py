"""The gpt and t5 families: their tokenizers and objectives, label scoring by prompting, text-to-text
decoding, and each family end to end at toy size (gpt through the Prefect flow, t5 through `dvc repro`):
pretrain, adapt, evaluate, register, load from the registry in a fresh process, predict.

    pytest tests/test_families.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import SMOKE
from tests.helpers import predict_in_fresh_process, set_params
from transferflow.config import ParamsError, TokenizerParams, load_params
from transferflow.family import family_names, get_family
from transferflow.heads import head_for
from transferflow.metrics import classification_scores
from transferflow.prompting import calibration_offsets, label_log_likelihoods
from transferflow.span_corruption import SpanCorruptionCollator
from transferflow.text_to_text import UNANSWERED, words_to_ids

REPO = Path(__file__).resolve().parents[1]
LINES = [line for line in (REPO / "data/wikitext2/train.txt").read_text().splitlines() if len(line) > 40][:2000]


@pytest.fixture(scope="module")
def tokenizers():
    return {name: get_family(name).tokenizer(LINES, TokenizerParams(vocab_size=600), 64) for name in family_names()}


def test_each_family_has_its_own_tokenizer(tokenizers):
    text = "The film opened in 1998 , to café reviews"
    gpt, t5 = tokenizers["gpt"], tokenizers["t5"]
    # byte-level BPE: any text round-trips (no unknown token), lower-cased as configured
    assert gpt.decode(gpt(text)["input_ids"]) == text.lower()
    assert gpt.unk_token_id not in gpt("naïve ☃")["input_ids"] or gpt.decode(gpt("naïve ☃")["input_ids"]) == "naïve ☃"
    # t5: unigram pieces, </s> appended, 100 sentinels for span corruption
    ids = t5(text)["input_ids"]
    assert ids[-1] == t5.eos_token_id
    assert len([t for t in t5.get_vocab() if t.startswith("<extra_id_")]) == 100
    # bert: WordPiece with [CLS] ... [SEP]
    bert_ids = tokenizers["bert"](text)["input_ids"]
    assert tokenizers["bert"].convert_ids_to_tokens([bert_ids[0], bert_ids[-1]]) == ["[CLS]", "[SEP]"]


def test_span_corruption_hides_spans_that_the_target_restores(tokenizers):
    tokenizer = tokenizers["t5"]
    collator = SpanCorruptionCollator(tokenizer, noise_density=0.15, mean_span_length=3.0)
    sentinels = set(collator.sentinels)
    torch.manual_seed(0)
    examples = [{"input_ids": tokenizer(line, add_special_tokens=False)["input_ids"][:64]} for line in LINES[:16]]
    batch = collator(examples)
    hidden = 0
    for example, inputs, labels in zip(examples, batch["input_ids"].tolist(), batch["labels"].tolist()):
        inputs = [t for t in inputs if t != tokenizer.pad_token_id][:-1]  # drop padding and </s>
        labels = [t for t in labels if t != -100][:-1]
        # put each sentinel's span back into the input: the original text comes back
        spans, current = {}, None
        for t in labels:
            if t in sentinels:
                current = t
                spans[current] = []
            else:
                spans[current].append(t)
        restored = [tok for t in inputs for tok in (spans[t] if t in sentinels else [t])]
        assert restored == example["input_ids"]
        hidden += sum(len(s) for s in spans.values())
    total = sum(len(e["input_ids"]) for e in examples)
    assert 0.10 < hidden / total < 0.20  # noise_density 0.15


class BigramLM(torch.nn.Module):
    """A causal LM whose next-token scores depend only on the current token: table[current, next]."""

    def __init__(self, table: torch.Tensor, positions: int = 512):
        super().__init__()
        self.table = table
        self.config = type("Config", (), {"max_position_embeddings": positions})()

    def forward(self, input_ids, attention_mask=None):
        return type("Output", (), {"logits": self.table[input_ids]})()


def test_prompting_picks_the_label_whose_word_the_model_finds_more_likely(tokenizers):
    tokenizer = tokenizers["gpt"]
    template, words = "Review: {text}\nSentiment:", ["bad", "good"]
    ids = {w: tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in words}
    last = tokenizer(template.format(text="fine"), add_special_tokens=False)["input_ids"][-1]
    vocab = len(tokenizer)
    for favoured, expected in (("good", 1), ("bad", 0)):
        table = torch.zeros(vocab, vocab)
        table[last, ids[favoured][0]] = 20.0  # after the prompt's last token, the favoured word's first piece
        for a, b in zip(ids[favoured], ids[favoured][1:]):  # and the rest of the word after each piece
            table[a, b] = 20.0
        contexts = [template.format(text=t) for t in ("fine", "a long , winding review : fine")]
        scores = label_log_likelihoods(BigramLM(table), tokenizer, contexts, words)
        assert scores.shape == (2, 2) and (scores.argmax(1) == expected).all()
        # the score is the word's log-likelihood: near 0 for the favoured word
        assert scores[0, expected] > -0.01 and scores[0, 1 - expected] < -5


def test_calibration_undoes_a_bias_towards_one_label_word(tokenizers):
    tokenizer = tokenizers["gpt"]
    template, words = "Review: {text}", ["bad", "good"]  # the text's last token is the one before the word
    ids = {w: tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in words}
    last = {t: tokenizer(template.format(text=t), add_special_tokens=False)["input_ids"][-1] for t in ("awful", "great")}
    assert last["awful"] != last["great"]
    table = torch.zeros(len(tokenizer), len(tokenizer))
    for word in ids.values():
        for a, b in zip(word, word[1:]):  # the rest of each word is certain once it has begun
            table[a, b] = 20.0
    table[:, ids["good"][0]] = 2.0  # after any token, "good" is e^2 times likelier than "bad": a bias
    table[last["awful"], ids["bad"][0]] = 1.5  # "awful" raises "bad", but not above the bias
    table[last["great"], ids["good"][0]] = 3.0
    model = BigramLM(table)
    contexts = [template.format(text=t) for t in ("awful", "great")]
    raw = label_log_likelihoods(model, tokenizer, contexts, words)
    assert (raw.argmax(1) == [1, 1]).all()  # uncalibrated, the bias wins for both texts
    offsets = calibration_offsets(model, tokenizer, "", template, words)
    assert offsets[1] - offsets[0] == pytest.approx(2.0, abs=1e-3)  # the bias, measured on content-free inputs
    assert ((raw - offsets).argmax(1) == [0, 1]).all()


def test_prompt_longer_than_the_model_loses_its_oldest_demonstrations(tokenizers):
    tokenizer = tokenizers["gpt"]
    table = torch.zeros(len(tokenizer), len(tokenizer))
    long_context = "old demonstration . " * 200 + "Review: fine\nSentiment:"
    short = label_log_likelihoods(BigramLM(table, positions=32), tokenizer, [long_context], ["good", "bad"])
    assert np.isfinite(short).all()  # cut to the last 32 positions, not an index error


def test_answer_training_keeps_the_checkpoint_best_on_the_served_scores_not_the_loss(tokenizers, tmp_path):
    from datasets import Dataset
    from transformers import GPT2Config, GPT2LMHeadModel

    from transferflow.config import FinetuneParams
    from transferflow.prompting import sft_features
    from transferflow.training import train, training_arguments

    tokenizer = tokenizers["gpt"]
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2))
    rows = Dataset.from_dict({"text": LINES[:24], "label": [i % 2 for i in range(24)]})
    data = rows.map(sft_features(tokenizer, "Review: {text}\nSentiment:", ["bad", "good"], 64), batched=True,
                    remove_columns=rows.column_names)
    served_accuracy = iter([0.9, 0.5, 0.4, 0.4])  # best at the first evaluation, while the loss still falls

    def score_validation(model):
        return {"accuracy": next(served_accuracy), "f1": 0.5}

    p = FinetuneParams(max_steps=6, eval_steps=2, batch_size=4, learning_rate=1e-2, early_stopping_patience=5)
    args = training_arguments(p, str(tmp_path), load_best_model_at_end=True, metric_for_best_model=p.metric,
                              greater_is_better=True)  # as transferflow/finetuning.py has them
    collator = head_for(get_family("gpt"), "classification").collator(tokenizer, model)
    trainer, _ = train(model, args, data, collator, eval_data=data, score_validation=score_validation,
                       patience=p.early_stopping_patience)
    evals = [log for log in trainer.state.log_history if "eval_loss" in log]
    assert [log["eval_accuracy"] for log in evals] == [0.9, 0.5, 0.4]  # logged with the loss, as any eval_ metric
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"]  # the loss alone would have kept the last checkpoint
    assert trainer.state.best_metric == 0.9 and trainer.state.best_model_checkpoint.endswith("checkpoint-2")


def test_text_to_text_answers_map_back_to_labels_and_anything_else_is_wrong():
    ids = words_to_ids(["positive", " Negative ", "positive!", ""], ["negative", "positive"])
    assert ids.tolist() == [1, 0, UNANSWERED, UNANSWERED]
    scores = classification_scores(ids, [1, 0, 1, 0])
    assert scores["accuracy"] == 0.5 and 0 < scores["f1"] < 1  # -1 is wrong, not a third class


def test_a_strategy_of_another_family_is_refused(tmp_path):
    params = yaml.safe_load(SMOKE.read_text())
    params["pretrain"]["family"] = "gpt"  # finetune.strategies are bert strategies
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    params["finetune"]["strategies"] = ["head"]  # an encoder's strategy
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="'head' applies to encoder models, not to family gpt \\(decoder\\)"):
        load_params(tmp_path / "params.yaml")
    params["finetune"]["strategies"], params["data_efficiency"]["strategies"] = ["prompt"], ["prompt"]
    params["finetune"]["prompt"] = {"label_words": ["bad", "ok", "good"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="one word per label"):
        load_params(tmp_path / "params.yaml")


def test_modernbert_refuses_what_only_bert_has(tmp_path):
    params = yaml.safe_load(SMOKE.read_text())
    params["pretrain"]["family"] = "modernbert"
    params["finetune"]["strategies"] = ["full", "prefix"]
    params["finetune"]["max_length"] = 64  # prefix's virtual tokens would not fit either: the family error comes first
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="'prefix' applies to families \\['bert'\\]"):
        load_params(tmp_path / "params.yaml")
    params["pretrain"]["family"], params["finetune"]["strategies"] = "bert", ["full"]
    params["finetune"]["max_length"] = 48
    params["finetune"]["pooling"] = "mean"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match="finetune.pooling: mean: family bert's sequence classifier takes cls"):
        load_params(tmp_path / "params.yaml")


# --- each family end to end ------------------------------------------------------------------------

MODERNBERT = dict(pretrain={"family": "modernbert"}, register={"model_name": "family-modernbert"},
                  finetune={"strategies": ["full", "head", "lora", "ia3", "features"], "max_steps": 20,
                            "eval_steps": 10},
                  data_efficiency={"strategies": ["full"]})

GPT = dict(pretrain={"family": "gpt"}, register={"model_name": "family-gpt"},
           finetune={"strategies": ["prompt", "full", "lora"], "max_steps": 20, "eval_steps": 10,
                     "options": {"prompt": {"shots": [0, 2]}, "lora": {"learning_rate": 3e-3}}},
           data_efficiency={"strategies": ["full"]})
T5 = dict(pretrain={"family": "t5"}, register={"model_name": "family-t5"},
          finetune={"strategies": ["full"], "max_steps": 60, "eval_steps": 20,
                    "options": {"full": {"learning_rate": 3e-3}}},
          data_efficiency={"strategies": ["full"], "fractions": [1.0]})


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_gpt_family_end_to_end_through_the_flow(workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'gpt.db'}")
    set_params(workspace / "params.yaml", **GPT)
    from flows.pipeline import pipeline

    pipeline(params_file="params.yaml")
    board = {r["strategy"]: r for r in json.loads(Path("artifacts/evaluate/leaderboard.json").read_text())}
    assert set(board) == {"prompt", "full", "lora"}  # full and lora on gpt's head: prompt + label word (SFT)
    assert board["prompt"]["trainable_params"] == 0 and board["lora"]["trainable_pct"] < 10
    summary = json.loads(Path("artifacts/finetune/prompt/summary.json").read_text())
    assert set(summary["shot_scores"]) == {"0-shot", "0-shot calibrated", "2-shot", "2-shot calibrated"}
    # the leaderboard's prompt row is the (k, calibration) chosen on validation, scored again by evaluate
    assert board["prompt"]["validation_accuracy"] == pytest.approx(summary["shot_scores"][summary["choice"]]["validation"])
    from safetensors.torch import load_file  # the stored adapter holds the trained LoRA weights

    adapter = load_file("artifacts/finetune/lora/adapter/adapter_model.safetensors")
    assert adapter and all("lora_" in name for name in adapter)
    client = MlflowClient()
    champion = client.get_model_version_by_alias("family-gpt", "champion")
    assert champion.tags["strategy"] == json.loads(Path("metrics/evaluate.json").read_text())["best_by_validation"]
    labels = predict_in_fresh_process("models:/family-gpt@champion", ["a gripping , funny film", "dull"])
    assert len(labels) == 2 and set(labels) <= {"negative", "positive"}


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_modernbert_family_end_to_end_through_the_flow(workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'modernbert.db'}")
    set_params(workspace / "params.yaml", **MODERNBERT)
    from flows.pipeline import pipeline

    pipeline(params_file="params.yaml")
    pretrained = json.loads(Path("artifacts/pretrain/config.json").read_text())
    assert pretrained["architectures"] == ["ModernBertForMaskedLM"] and pretrained["sparse_prediction"]
    assert pretrained["mlp_dropout"] == 0.1  # pretrained without dropout; fine-tuning gets it back
    tokenizer = json.loads(Path("artifacts/tokenizer/tokenizer_config.json").read_text())
    assert "token_type_ids" not in tokenizer["model_input_names"]  # ModernBERT has no segments
    head = json.loads(Path("artifacts/finetune/head/model/config.json").read_text())
    assert head["architectures"] == ["ModernBertForSequenceClassification"] and head["classifier_pooling"] == "mean"
    board = {r["strategy"]: r for r in json.loads(Path("artifacts/evaluate/leaderboard.json").read_text())}
    assert set(board) == {"full", "head", "lora", "ia3", "features"}
    assert board["ia3"]["trainable_pct"] < board["lora"]["trainable_pct"] < board["full"]["trainable_pct"] == 100
    labels = predict_in_fresh_process("models:/family-modernbert@champion", ["a gripping , funny film", "dull"])
    assert len(labels) == 2 and set(labels) <= {"negative", "positive"}


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_t5_family_end_to_end_through_dvc_repro(tmp_path, monkeypatch):
    from tests.test_pipeline_dvc import _copy_repo

    repo = tmp_path / "clone"
    _copy_repo(repo)
    (repo / "data").symlink_to(REPO / "data", target_is_directory=True)
    (repo / "params.yaml").write_text(SMOKE.read_text())
    set_params(repo / "params.yaml", **T5)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 't5.db'}")
    env = os.environ | {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    # timeout generous: a loaded machine runs this several times slower than an idle one
    out = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=2400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    config = json.loads((repo / "artifacts/pretrain/config.json").read_text())
    assert config["model_type"] == "t5" and config["is_encoder_decoder"]
    board = json.loads((repo / "artifacts/evaluate/leaderboard.json").read_text())
    assert [r["strategy"] for r in board] == ["full"] and board[0]["test_accuracy"] > 0.4  # t5's text-to-text head
    labels = predict_in_fresh_process("models:/family-t5@champion", ["a gripping , funny film", "dull"])
    assert len(labels) == 2 and set(labels) <= {"negative", "positive", ""}  # "": no label word generated
