"""Contract tests for fine-tuning strategies: one row per registered strategy puts it through them all.

    pytest tests/test_strategies.py

On a tiny BERT classifier and a tiny ModernBERT one (2 layers, width 16), for each family the strategy
applies to: it trains exactly the parameters it promises and
leaves the others bit-for-bit unchanged, it can overfit one batch, and it saves and loads (through
transferflow.models) to the same predictions. Then, on the smoke workspace, it runs through the
finetune stage, logs a tagged MLflow run, serves through the pyfunc, and the leaderboard takes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import datasets
import mlflow
import pytest
import torch
from transformers import (BertConfig, BertForSequenceClassification, BertTokenizerFast, ModernBertConfig,
                          ModernBertForSequenceClassification, Trainer, TrainingArguments)

from transferflow.strategy import all_strategies, get_strategy
from transferflow.models import load_classifier, save_classifier


def _peft_head(name: str) -> bool:
    """peft's trained copies of the new head (BERT's pooler or ModernBERT's head, and the classifier),
    kept beside the frozen originals."""
    return "modules_to_save" in name and ("pooler" in name or "classifier" in name or ".head." in name)


@dataclass(frozen=True)
class Row:
    trains: Callable[[str], bool] | None
    """Which parameter names of the adapted tiny model must be trainable (all others frozen); None
    for a strategy that trains itself (a `fit` hook) rather than through the Trainer loop."""
    tiny: dict = field(default_factory=dict)
    """Options for the tiny model (the stage test uses the smoke profile's)."""


ROWS: dict[str, Row] = {
    "scratch": Row(lambda n: True),
    "full": Row(lambda n: True),
    "lora": Row(lambda n: "lora_" in n or _peft_head(n)),
    "head": Row(lambda n: n.startswith(("bert.pooler.", "head.", "classifier."))),
    "freeze": Row(lambda n: "embeddings" not in n and not any(f".{x}.0." in n for x in ("layer", "layers")),
                  tiny={"layers": 1}),
    "layerwise_lr": Row(lambda n: True),
    "prefix": Row(lambda n: n.startswith("prompt_encoder.") or _peft_head(n), tiny={"num_virtual_tokens": 4}),
    "ia3": Row(lambda n: "ia3_l" in n or _peft_head(n)),
    "galore": Row(lambda n: True, tiny={"rank": 4, "update_proj_gap": 5}),
    # Strategies with their own `fit` (no Trainer loop): their contract tests live with them.
    "tfidf": Row(None),
    "features": Row(None),
    "multitask": Row(None),
    # Strategies of the gpt and t5 families (tests/test_families.py)
    "prompt": Row(None),
    "sft_full": Row(None),
    "sft_lora": Row(None),
    "text_to_text": Row(None),
}
STRATEGIES = all_strategies()
NEURAL = [name for name, row in ROWS.items() if row.trains is not None]
FAMILIES = ("bert", "modernbert")
NEURAL_BY_FAMILY = [pytest.param(name, family, id=f"{name}-{family}") for family in FAMILIES for name in NEURAL
                    if family in STRATEGIES[name].families]


def test_every_registered_strategy_has_a_row():
    assert sorted(ROWS) == sorted(STRATEGIES), "add a row to ROWS for each new strategy file"
    # Row(None) marks exactly the strategies that skip the Trainer loop
    assert {n for n, r in ROWS.items() if r.trains is None} == {n for n, s in STRATEGIES.items() if s.fit}


def test_unknown_strategy_lists_the_registered_ones():
    with pytest.raises(ValueError, match="registered: .*full.*lora"):
        get_strategy("no_such_strategy")


# --- the tiny model --------------------------------------------------------------------------------

def tiny_model(family: str = "bert", seed: int = 0):
    torch.manual_seed(seed)
    size = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=32, num_labels=2,
                initializer_range=0.2)  # 10x BERT's: features big enough for a frozen encoder to fit fast
    if family == "modernbert":  # the tiny tokenizer's ids; mean pooling, as tasks/pretrain.py saves it
        config = ModernBertConfig(**size, pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=2,
                                  eos_token_id=3, global_attn_every_n_layers=1, classifier_pooling="mean")
        return ModernBertForSequenceClassification(config)
    config = BertConfig(**size, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForSequenceClassification(config)


def tiny_tokenizer(folder, segments: bool = True) -> BertTokenizerFast:
    """A WordPiece tokenizer over the tiny model's 50 ids: BERT's specials, then words w0 .. w44;
    without segment ids for ModernBERT, as tasks/tokenizer.py trains it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
                                                [f"w{i}" for i in range(45)]))
    names = ["input_ids", "token_type_ids", "attention_mask"] if segments else ["input_ids", "attention_mask"]
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), model_input_names=names)


def tiny_texts(size: int = 8, length: int = 6) -> list[str]:
    g = torch.Generator().manual_seed(1)
    return [" ".join(f"w{i}" for i in row) for row in torch.randint(0, 45, (size, length), generator=g).tolist()]


def one_batch(tokenizer=None, texts: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Tokenized texts, or (no tokenizer) random ids: a random first token, unlike [CLS], tells the
    examples apart at the pooler from the start, so even a frozen encoder overfits them quickly."""
    if tokenizer is None:
        ids = torch.randint(5, 50, (8, 8), generator=torch.Generator().manual_seed(1))
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    else:
        batch = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    return batch | {"labels": torch.arange(len(batch["input_ids"])) % 2}


def adapted(name: str, family: str = "bert"):
    strategy = get_strategy(name)
    options = strategy.Options.model_validate(ROWS[name].tiny)
    return strategy, options, strategy.adapt(tiny_model(family), options)


def train(strategy, options, model, batch, tmp_path, steps: int, lr: float = 1e-2) -> None:
    """Train on one batch, repeated, the way tasks/finetune.py does: Trainer plus the strategy's hooks."""
    data = datasets.Dataset.from_dict({k: v.tolist() for k, v in batch.items()})
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=steps, learning_rate=lr,
                             per_device_train_batch_size=len(data), save_strategy="no", report_to=[],
                             logging_steps=steps, disable_tqdm=True, use_cpu=True, **strategy.training_args(options))
    optimizer = None
    if strategy.param_groups:
        optimizer = torch.optim.AdamW(strategy.param_groups(model, lr, options), lr=lr)
    Trainer(model=model, args=args, train_dataset=data, optimizers=(optimizer, None)).train()


@torch.no_grad()
def evaluate(model, batch) -> tuple[float, torch.Tensor]:
    model.eval()
    out = model(**batch)
    return out.loss.item(), out.logits


@pytest.mark.parametrize("name, family", NEURAL_BY_FAMILY)
def test_trains_what_it_promises_and_overfits_one_batch(name, family, tmp_path):
    strategy, options, model = adapted(name, family)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    promised = {n for n, _ in model.named_parameters() if ROWS[name].trains(n)}
    assert trainable == promised
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = one_batch()
    loss_before, _ = evaluate(model, batch)

    train(strategy, options, model, batch, tmp_path, steps=30)

    loss_after, _ = evaluate(model, batch)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable  # frozen weights bit-for-bit unchanged; every trained tensor moved
    assert loss_after < 0.7 * loss_before, (loss_before, loss_after)


@pytest.mark.parametrize("name, family", NEURAL_BY_FAMILY)
def test_save_then_load_predicts_the_same(name, family, tmp_path):
    strategy, options, model = adapted(name, family)
    tokenizer, texts = tiny_tokenizer(tmp_path / "tokenizer", segments=family == "bert"), tiny_texts()
    batch = one_batch(tokenizer, texts)
    train(strategy, options, model, batch, tmp_path, steps=3)
    _, expected = evaluate(model, batch)

    save_classifier(strategy.export(model), tmp_path / "model")  # as tasks/finetune.py does
    tokenizer.save_pretrained(tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")
    assert loaded.predict(texts).tolist() == expected.argmax(-1).tolist()
    # merging adapters into the weights reorders float arithmetic: equal up to rounding
    torch.testing.assert_close(evaluate(loaded.model, batch)[1], expected, atol=1e-5, rtol=1e-4)


# --- the pipeline stage ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finetuned(pretrained_workspace):
    """Every neural strategy through tasks.finetune.main in the smoke workspace, a few steps each."""
    from tasks import finetune
    from transferflow.config import load_params

    cwd = os.getcwd()
    os.chdir(pretrained_workspace)
    try:
        params = load_params("params.yaml")
        short = params.finetune.model_copy(update={"max_steps": 2, "eval_steps": 2, "strategies": NEURAL})
        params = params.model_copy(update={"finetune": short})
        yield params, {name: finetune.main(params, name) for name in NEURAL}
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("name", NEURAL)
def test_runs_through_the_stage_and_serves(name, finetuned, in_pretrained):
    from transferflow.serving import TextClassifier

    _, summaries = finetuned
    summary = summaries[name]
    assert summary["strategy"] == name and summary["steps"] > 0
    assert summary["optimizer_state_mb"] > 0
    runs = mlflow.search_runs(experiment_names=["transferflow"], output_format="list",
                              filter_string=f"tags.`transferflow.strategy` = '{name}'")
    assert runs and runs[0].info.status == "FINISHED"
    served = TextClassifier()
    served.load_context(SimpleNamespace(artifacts={"model": str(in_pretrained / f"artifacts/finetune/{name}/model")}))
    assert set(served.predict(None, ["a gripping , funny film", "a dull mess " * 40])) <= {"negative", "positive"}


def test_leaderboard_takes_every_strategy(finetuned, in_pretrained):
    from tasks import evaluate as evaluate_stage

    params, _ = finetuned
    rows = {r["strategy"]: r for r in evaluate_stage.main(params)}
    assert sorted(rows) == sorted(NEURAL)
    assert (in_pretrained / "artifacts/evaluate/leaderboard.png").stat().st_size > 0
    # GaLore keeps the Adam moments of the big linear layers in low rank: less state than AdamW
    assert rows["galore"]["optimizer_state_mb"] < rows["full"]["optimizer_state_mb"]
