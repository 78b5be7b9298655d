"""The pretraining recipe: sparse masked-LM decoding, packed blocks, no dropout while pretraining,
bf16 only where it is faster, and diagnostics that show whether the model learned context."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForMaskedLM, BertConfig, BertForMaskedLM

from transferflow.masked_lm import SparseBertForMaskedLM
from transferflow.precision import use_bf16


def test_sparse_decoder_gives_the_dense_models_loss(tmp_path):
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    torch.manual_seed(0)
    dense = BertForMaskedLM(config).eval()
    sparse = SparseBertForMaskedLM(config).eval()
    sparse.load_state_dict(dense.state_dict())
    ids = torch.randint(5, 50, (3, 16))
    labels = torch.full_like(ids, -100)
    labels[:, [2, 7, 11]] = ids[:, [2, 7, 11]]
    expected = dense(input_ids=ids, labels=labels).loss
    out = sparse(input_ids=ids, labels=labels)
    assert out.logits.shape == (9, 50)  # one row per labelled position, not 3 x 16
    assert torch.allclose(out.loss, expected, atol=1e-5)
    sparse.save_pretrained(tmp_path)  # a stock folder: the class it names, and Auto loads it
    assert AutoConfig.from_pretrained(tmp_path).architectures == ["BertForMaskedLM"]
    assert type(AutoModelForMaskedLM.from_pretrained(tmp_path)) is BertForMaskedLM


def test_precision_as_asked_and_auto_decides():
    assert use_bf16("fp32") is False and use_bf16("bf16") is True
    assert use_bf16("auto") in (True, False)


def test_pretrain_stage_packs_blocks_drops_dropout_and_reports_context(in_pretrained):
    from transformers import AutoTokenizer

    from tasks.pretrain import pack_blocks
    from transferflow.config import load_params
    from transferflow.files import load_prepared

    params = load_params("params.yaml")
    tokenizer = AutoTokenizer.from_pretrained("artifacts/tokenizer")
    blocks = pack_blocks(load_prepared("artifacts/prepare/corpus"), tokenizer, params.pretrain.model.max_length)
    ids = blocks["train"]["input_ids"]
    assert {len(b) for b in ids} == {params.pretrain.model.max_length}  # packed: no padding anywhere
    assert all(b[0] == tokenizer.cls_token_id for b in ids) and tokenizer.pad_token_id not in sum(ids, [])

    config = AutoConfig.from_pretrained("artifacts/pretrain")
    assert config.architectures == ["BertForMaskedLM"]
    assert config.hidden_dropout_prob == params.pretrain.model.dropout  # fine-tuning gets it back
    assert params.pretrain.pretraining_dropout == 0.0
    summary = json.loads(open("metrics/pretrain.json").read())
    assert 0 < summary["token_accuracy"] < 1 and summary["unigram_entropy"] > 1
    assert summary["loss"] == pytest.approx(torch.tensor(summary["perplexity"]).log().item(), rel=1e-4)


def test_task_adaptive_mix_adds_the_task_train_texts_only():
    from datasets import Dataset, DatasetDict

    from tasks.prepare import mix_task_text

    corpus = DatasetDict(train=Dataset.from_dict({"text": ["wiki a", "wiki b"]}),
                         validation=Dataset.from_dict({"text": ["wiki held out"]}))
    task_train = Dataset.from_dict({"text": ["review 1", "review 2", "review 3"], "label": [0, 1, 0]})
    mixed, card = mix_task_text(corpus, task_train, times=2, seed=0)
    assert sorted(mixed["train"]["text"]) == sorted(["wiki a", "wiki b"] + ["review 1", "review 2", "review 3"] * 2)
    assert mixed["validation"]["text"] == ["wiki held out"]  # perplexity stays on the corpus's own text
    assert card == {"task_train_texts": 3, "times": 2, "corpus_lines": 2, "task_share_of_lines": 0.75}


def test_peak_memory_is_each_blocks_own():
    import numpy as np

    from transferflow.training import PeakMemory

    with PeakMemory() as big:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
        del block
    with PeakMemory() as small:
        sum(range(1000))
    assert 150 < big.mb < 400  # the block's own rise, not the process's peak so far
    assert small.mb < 50  # reset: the earlier 200 MiB does not count here


def test_pretraining_starts_from_a_checkpoint_imports_it_or_continues_it(pretrained_workspace, tmp_path, monkeypatch):
    """pretrain.init_from: the checkpoint is a folder this suite saved (the smoke pipeline's pretrained
    model; no network here), its tokenizer is taken, and 0 steps import it as it is."""
    import shutil

    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from tasks import pretrain, tokenizer
    from tests.conftest import make_workspace
    from transferflow.config import load_params
    from transferflow.errors import ParamsError

    checkpoint = pretrained_workspace / "artifacts" / "pretrain"
    root = make_workspace(tmp_path / "ws")
    shutil.copytree(pretrained_workspace / "artifacts" / "prepare", root / "artifacts" / "prepare")
    monkeypatch.chdir(root)
    params = load_params("params.yaml")

    def starting(**fields):
        return params.model_copy(update={"pretrain": params.pretrain.model_copy(
            update={"init_from": str(checkpoint)} | fields)})

    tokenizer.main(starting(max_steps=0))
    assert AutoTokenizer.from_pretrained("artifacts/tokenizer").get_vocab() == \
        AutoTokenizer.from_pretrained(checkpoint).get_vocab()
    summary = pretrain.main(starting(max_steps=0))
    assert summary["steps"] == 0 and summary["init_from"] == str(checkpoint)
    original, imported = (load_file(f / "model.safetensors") for f in (checkpoint, Path("artifacts/pretrain")))
    assert all(torch.equal(original[k], imported[k]) for k in original)

    summary = pretrain.main(starting(max_steps=3, eval_steps=3))  # continued pretraining on the corpus
    assert summary["steps"] == 3
    continued = load_file(Path("artifacts/pretrain") / "model.safetensors")
    assert original.keys() == continued.keys() and not all(torch.equal(original[k], continued[k]) for k in original)

    with pytest.raises(ParamsError, match=r"holds a bert model; pretrain.family modernbert needs modernbert"):
        pretrain.main(starting(family="modernbert"))


def test_zero_pretraining_steps_need_a_checkpoint():
    from pydantic import ValidationError

    from transferflow.config import PretrainParams

    with pytest.raises(ValidationError, match="max_steps 0 trains nothing: it needs init_from"):
        PretrainParams(max_steps=0)
    assert PretrainParams(max_steps=0, init_from="some/checkpoint").max_steps == 0


def test_previous_continues_from_the_last_pretrained_model_of_the_workspace(pretrained_workspace, tmp_path,
                                                                            monkeypatch):
    import shutil

    from tasks import pretrain, tokenizer
    from tests.conftest import make_workspace
    from transferflow.checkpoint import PREVIOUS
    from transferflow.config import load_params

    root = make_workspace(tmp_path / "ws")
    shutil.copytree(pretrained_workspace / "artifacts" / "prepare", root / "artifacts" / "prepare")
    monkeypatch.chdir(root)
    params = load_params("params.yaml")
    params = params.model_copy(update={"pretrain": params.pretrain.model_copy(
        update={"init_from": "previous", "max_steps": 2, "eval_steps": 2})})

    for night, start in enumerate(["random init", str(PREVIOUS)]):
        tokenizer.main(params)
        before = pretrain.STAGE.cache_key(params)
        summary = pretrain.main(params)
        assert summary["init_from"] == start, f"night {night}"
        assert (PREVIOUS / "model.safetensors").is_file()
    assert str(PREVIOUS) in pretrain.STAGE.resolve(params).deps
    assert pretrain.STAGE.cache_key(params) != before  # the flow's cache sees the kept model: the next night trains
