"""Contract tests for fine-tuning strategies: one row per registered strategy puts it through them all.

    pytest tests/test_strategies.py

Every family gets a tiny pretrained model made by its own record (tests/helpers.py:tiny_pretrained: its
tokenizer trained on a few hundred WikiText lines, its architecture at width 16, 2 layers) and a tiny
labelled task of real SST-2 rows. On each family a strategy applies to:
- a gradient strategy, adapted on the family's task head, trains exactly the parameters its row
  promises and leaves the others bit-for-bit unchanged, overfits one batch, and saves and loads
  (through transferflow.models) to the same predictions;
- a strategy that fits itself writes a model folder that loads and predicts exactly the validation
  scores its summary reports.
Then, on the smoke workspace, every encoder strategy runs through the finetune stage, logs a tagged
MLflow run, serves through the pyfunc, and the leaderboard takes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import datasets
import mlflow
import pytest
import torch
from transformers import AutoTokenizer, TrainingArguments

from tests.helpers import tiny_pretrained
from transferflow.config import FinetuneParams
from transferflow.family import family_names, get_family
from transferflow.finetuning import finetune, grouped_optimizer
from transferflow.heads import head_for
from transferflow.metrics import classification_scores
from transferflow.models import TransformersClassifier, load_classifier
from transferflow.strategy import FitInputs, FitStrategy, Target, all_strategies, get_strategy
from transferflow.training import train

REPO = Path(__file__).resolve().parents[1]


def _peft_head(name: str) -> bool:
    """peft's trained copies of the new head (BERT's pooler or ModernBERT's head, and the classifier),
    kept beside the frozen originals."""
    return "modules_to_save" in name and ("pooler" in name or "classifier" in name or ".head." in name)


@dataclass(frozen=True)
class Row:
    trains: Callable[[str], bool] | None
    """Which parameter names of the adapted tiny model must be trainable (all others frozen); None for
    a strategy that fits itself (a FitStrategy), put through the fit contract instead."""
    tiny: dict = field(default_factory=dict)
    """Options for the tiny model (the stage test uses the smoke profile's)."""


ROWS: dict[str, Row] = {
    "scratch": Row(lambda n: True),
    "full": Row(lambda n: True),
    "lora": Row(lambda n: "lora_" in n or _peft_head(n), tiny={"learning_rate": 3e-2}),
    "head": Row(lambda n: n.startswith(("bert.pooler.", "head.", "classifier."))),
    "freeze": Row(lambda n: "embeddings" not in n and not any(f".{x}.0." in n for x in ("layer", "layers")),
                  tiny={"layers": 1}),
    "layerwise_lr": Row(lambda n: True),
    "prefix": Row(lambda n: n.startswith("prompt_encoder.") or _peft_head(n), tiny={"num_virtual_tokens": 4}),
    "ia3": Row(lambda n: "ia3_l" in n or _peft_head(n)),
    "galore": Row(lambda n: True, tiny={"rank": 4, "update_proj_gap": 5}),
    "tfidf": Row(None),
    "features": Row(None, tiny={"C": 10.0}),
    "multitask": Row(None, tiny={"compare_single_task": False}),
    "prompt": Row(None, tiny={"shots": [0, 2], "batch_size": 8}),
}
STRATEGIES = all_strategies()
TASK_TYPE = "classification"
PAIRS = [(name, family) for family in family_names() for name in ROWS
         if STRATEGIES[name].why_not(get_family(family), TASK_TYPE) is None]
GRADIENT = [pytest.param(name, family, id=f"{name}-{family}") for name, family in PAIRS if ROWS[name].trains]
FITTED = [pytest.param(name, family, id=f"{name}-{family}") for name, family in PAIRS if not ROWS[name].trains]
NEURAL = [name for name, row in ROWS.items() if row.trains is not None]


def test_every_registered_strategy_has_a_row_and_runs_somewhere():
    assert sorted(ROWS) == sorted(STRATEGIES), "add a row to ROWS for each new strategy file"
    # Row(None) marks exactly the strategies that fit themselves
    assert {n for n, r in ROWS.items() if r.trains is None} == {n for n, s in STRATEGIES.items()
                                                                if isinstance(s, FitStrategy)}
    assert {name for name, _ in PAIRS} == set(ROWS)  # each applies to some family's head


def test_unknown_strategy_lists_the_registered_ones():
    with pytest.raises(ValueError, match="registered: .*full.*lora"):
        get_strategy("no_such_strategy")


# --- a tiny pretrained model of each family, made by its record ------------------------------------

SST2 = [row for row in (line.rsplit("\t", 1) for line in (REPO / "data/sst2/train.tsv").read_text().splitlines()[1:])
        if len(row[0].split()) <= 8][:40]  # short: within finetune.max_length, where served and trained inputs agree
PARAMS = FinetuneParams(max_length=32, seed=0)


def tiny_task() -> datasets.DatasetDict:
    """40 short real SST-2 rows: 24 train, 8 validation, 8 test."""
    rows = datasets.Dataset.from_dict({"text": [t.strip() for t, _ in SST2], "label": [int(y) for _, y in SST2]})
    rows = rows.cast_column("label", datasets.ClassLabel(names=["negative", "positive"]))
    return datasets.DatasetDict(train=rows.select(range(24)), validation=rows.select(range(24, 32)),
                                test=rows.select(range(32, 40)))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> dict[str, Path]:
    """family -> folder of its tiny pretrained model and tokenizer, as the pretrain stage writes it."""
    return {name: tiny_pretrained(name, tmp_path_factory.mktemp(f"pretrained-{name}")) for name in family_names()}


def inputs(family: str, folder: Path, tmp_path: Path, name: str) -> FitInputs:
    options = {name: ROWS[name].tiny}
    return FitInputs(task=tiny_task(), params=PARAMS.model_copy(update={"options": options}),
                     family=get_family(family), task_type=TASK_TYPE, pretrained=folder, tokenizer=folder,
                     prepared=tmp_path / "prepared", checkpoints=tmp_path / "checkpoints")


def adapted(name: str, family: str, folder: Path):
    strategy, head = get_strategy(name), head_for(get_family(family), TASK_TYPE)
    options = strategy.Options.model_validate(ROWS[name].tiny)
    model = head.build(folder, strategy.init, ["negative", "positive"], PARAMS)
    return strategy, head, strategy.adaptation(model, options, Target(get_family(family), head))


def one_batch(head, tokenizer, model) -> dict[str, torch.Tensor]:
    """The tiny task's first 8 training rows, encoded and collated by the head as fine-tuning does."""
    rows = head.encode(tiny_task(), tokenizer, PARAMS, model)["train"].select(range(8))
    return head.collator(tokenizer, model)([rows[i] for i in range(len(rows))])


def overfit_batch(head, tokenizer, model) -> dict[str, torch.Tensor]:
    """A batch to overfit. For a classifier head, random ids: a random first token, unlike [CLS], tells
    the examples apart at the pooler from the start, so even a frozen encoder overfits them quickly. An
    answer head's labels are token ids: its own encoding of the tiny task."""
    if head.served_scoring:
        return one_batch(head, tokenizer, model)
    ids = torch.randint(5, 200, (8, 8), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.arange(8) % 2}


def train_on(adaptation, batch, tmp_path, steps: int, lr: float | None = None) -> None:
    """Train on one batch, repeated, through the one training loop with the adaptation's optimizer, at
    the row's learning rate (1e-2 unless it sets one)."""
    lr = lr or 1e-2
    data = datasets.Dataset.from_dict({k: v.tolist() for k, v in batch.items()})
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=steps, learning_rate=lr,
                             per_device_train_batch_size=len(data), save_strategy="no", report_to=[],
                             logging_steps=steps, disable_tqdm=True, use_cpu=True, **adaptation.optimizer)
    train(adaptation.model, args, data, lambda rows: {k: torch.tensor([r[k] for r in rows]) for k in rows[0]},
          optimizer=grouped_optimizer(adaptation, lr, 0.0))


@torch.no_grad()
def loss_of(model, batch) -> float:
    model.eval()
    return model(**batch).loss.item()


# --- the gradient contract -------------------------------------------------------------------------

@pytest.mark.parametrize("name, family", GRADIENT)
def test_trains_what_it_promises_and_overfits_one_batch(name, family, pretrained, tmp_path):
    strategy, head, adaptation = adapted(name, family, pretrained[family])
    model = adaptation.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    promised = {n for n, _ in model.named_parameters() if ROWS[name].trains(n)}
    assert trainable == promised
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = overfit_batch(head, AutoTokenizer.from_pretrained(pretrained[family]), model)
    loss_before = loss_of(model, batch)

    train_on(adaptation, batch, tmp_path, steps=80 if head.served_scoring else 30, lr=ROWS[name].tiny.get("learning_rate"))

    loss_after = loss_of(model, batch)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable  # frozen weights bit-for-bit unchanged; every trained tensor moved
    assert loss_after < 0.7 * loss_before, (loss_before, loss_after)


@pytest.mark.parametrize("name, family", GRADIENT)
def test_save_then_load_predicts_the_same(name, family, pretrained, tmp_path):
    strategy, head, adaptation = adapted(name, family, pretrained[family])
    tokenizer = AutoTokenizer.from_pretrained(pretrained[family])
    train_on(adaptation, one_batch(head, tokenizer, adaptation.model), tmp_path, steps=3)
    texts = list(tiny_task()["test"]["text"])
    served = head.classifier(adaptation.model.eval(), tokenizer, ["negative", "positive"], PARAMS)
    expected, logits = served.predict(texts), _logits(served, texts)

    head.save(strategy.export(adaptation.model), tokenizer, tmp_path / "model", ["negative", "positive"], PARAMS)
    loaded = load_classifier(tmp_path / "model")
    assert loaded.predict(texts).tolist() == expected.tolist()
    if logits is not None:  # merging adapters into the weights reorders float arithmetic: equal up to rounding
        torch.testing.assert_close(_logits(loaded, texts), logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["bert", "modernbert"])
def test_served_classifier_truncates_where_fine_tuning_did(family, pretrained, tmp_path):
    # Trained on finetune.max_length tokens, served on the same: a longer text is cut at the same place,
    # in memory (checkpoint scoring) and once saved (evaluate, serving), not at the model's positions.
    _, head, adaptation = adapted("full", family, pretrained[family])
    tokenizer = AutoTokenizer.from_pretrained(pretrained[family])
    short = PARAMS.model_copy(update={"max_length": 6})
    long_text = " ".join(text for text, _ in SST2[:6])
    first_six = tokenizer(long_text, truncation=True, max_length=6, return_tensors="pt")
    head.save(adaptation.model, tokenizer, tmp_path / "model", ["negative", "positive"], short)
    for served in (head.classifier(adaptation.model.eval(), tokenizer, ["negative", "positive"], short),
                   load_classifier(tmp_path / "model")):
        assert served.max_length == 6
        with torch.no_grad():
            torch.testing.assert_close(served.model(**first_six).logits, _logits(served, [long_text]))
        assert served.predict([long_text]).tolist() == served.model(**first_six).logits.argmax(-1).tolist()
    assert tokenizer.model_max_length == 64  # the caller's tokenizer is left as it was


@torch.no_grad()
def _logits(classifier, texts: list[str]) -> torch.Tensor | None:
    """A sequence classifier's logits (None for the heads served by generation or label words)."""
    if not isinstance(classifier, TransformersClassifier):
        return None
    batch = classifier.tokenizer(texts, padding=True, truncation=True, max_length=classifier.max_length,
                                 return_tensors="pt")
    return classifier.model(**batch).logits


# --- the fit contract ------------------------------------------------------------------------------

def _auxiliary_task(prepared: Path) -> None:
    """multitask reads a second task and its source from the prepare stage's folder."""
    rows = tiny_task()
    aux = rows.map(lambda r, i: {"label": i % 4}, with_indices=True, features=datasets.Features(
        text=datasets.Value("string"), label=datasets.ClassLabel(names=["a", "b", "c", "d"])))
    aux.save_to_disk(str(prepared / "aux_task"))
    (prepared / "data_card.json").write_text(json.dumps({"aux_task": {"source": "tiny"}}))


@pytest.mark.parametrize("name, family", FITTED)
def test_fits_a_folder_that_serves_the_scores_it_reports(name, family, pretrained, tmp_path):
    fit_inputs = inputs(family, pretrained[family], tmp_path, name)
    _auxiliary_task(fit_inputs.prepared)
    summary = finetune(fit_inputs, name, tmp_path / "out")

    assert summary["strategy"] == name and 0 <= summary["trainable_params"] <= summary["total_params"]
    assert summary["stored_mb"] > 0 and json.loads((tmp_path / "out/summary.json").read_text())["strategy"] == name
    validation = fit_inputs.task["validation"]
    served = load_classifier(tmp_path / "out/model").predict(list(validation["text"]))
    assert classification_scores(served, validation["label"])["accuracy"] == summary["validation"]["accuracy"]


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
