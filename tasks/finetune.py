"""finetune: train a sequence classifier (for a ner task, a token classifier) on the task with one strategy.

    python -m tasks.finetune [--params params.yaml] STRATEGY

One loop (Trainer) serves every neural strategy: the strategy only picks the starting weights and wraps
or freezes the model (tasks/strategies/). Strategies that train themselves (tfidf, features,
multitask) set a `fit` hook and are called instead. Early stopping and checkpoint selection use
validation only.
Writes artifacts/finetune/STRATEGY/{model,adapter?,summary.json} in one rename. Checkpoints go to
checkpoints/finetune/STRATEGY every eval_steps; a killed run re-run with the same params continues from
the last one (as pretrain does) and ends with the same figures as a run that was never stopped.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import datasets
import mlflow
import numpy as np
import torch
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification,
                          AutoTokenizer, DataCollatorForTokenClassification, DataCollatorWithPadding,
                          EarlyStoppingCallback, Trainer, set_seed)

from transferflow.strategy import FitInputs, Strategy, get_strategy
from transferflow.config import FinetuneParams, Params
from transferflow.files import atomic_dir, load_prepared, write_json
from transferflow.metrics import classification_scores
from transferflow.stage import REPO, StageSpec, stage_cli
from transferflow.tracking import stage_run
from transferflow.models import save_classifier
from transferflow.token_classification import TAGS, encode_tagged, is_tagging, trainer_metrics
from transferflow.training import (MlflowMetrics, PeakMemory, StopOnDivergence, count_parameters, optimizer_state_mb,
                                  resume_point, training_arguments, validation_summary)

TASK = Path("artifacts/prepare/task")
AUX_TASK = Path("artifacts/prepare/aux_task")  # read by the multitask strategy
PRETRAINED = Path("artifacts/pretrain")
TOKENIZER = Path("artifacts/tokenizer")
SHARED_PARAMS = tuple(f"finetune.{key}" for key in FinetuneParams.model_fields if key not in ("strategies", "options"))
"""The fine-tuning settings every strategy reads; a strategy also reads its own finetune.options.<name>."""
STAGE = StageSpec(
    name="finetune",
    # One stage per strategy, each on the shared settings and its own options and file only: changing
    # finetune.options.lora or tasks/strategies/lora.py re-runs finetune@lora and no other fine-tune.
    params=(*SHARED_PARAMS, "finetune.options.{item}"),
    deps=(str(TASK), str(AUX_TASK), str(TOKENIZER), str(PRETRAINED)),
    outs=("artifacts/finetune/{item}",),
    metrics=("metrics/finetune/{item}.json",),
    foreach="finetune.strategies",
    loads=("tasks/strategies/{item}.py",),
)


def resume_code(strategy: str) -> list[Path]:
    """The strategy's code deps, found beside this file wherever the stage runs: a change there starts afresh."""
    return [REPO / dep for dep in STAGE.for_item(strategy).code]


def encode_task(task: datasets.DatasetDict, tokenizer, max_length: int) -> datasets.DatasetDict:
    def encode(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    return task.map(encode, batched=True, remove_columns=["text"]).rename_column("label", "labels")


def build_classifier(init: str, label_names: list[str], seed: int, auto_class=AutoModelForSequenceClassification,
                     pooling: str | None = None):
    """The pretrained encoder with a new head, or the same architecture from random weights; `auto_class`
    picks the head (AutoModelForTokenClassification: one label per word piece, for ner). `pooling`
    (finetune.pooling) sets ModernBERT's classifier_pooling, which the saved config carries to serving."""
    labels = dict(num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                  label2id={n: i for i, n in enumerate(label_names)})
    if pooling:  # params validation allows it for modernbert only
        labels["classifier_pooling"] = pooling
    set_seed(seed)
    if init == "pretrained":
        return auto_class.from_pretrained(PRETRAINED, **labels)
    return auto_class.from_config(AutoConfig.from_pretrained(PRETRAINED, **labels))


def _compute_metrics(eval_pred) -> dict[str, float]:
    logits, labels = eval_pred
    return classification_scores(np.argmax(logits, axis=-1), labels)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _fit_itself(strategy: Strategy, options, p: FinetuneParams, task: datasets.DatasetDict, out: Path,
                checkpoints: Path) -> dict:
    """A strategy with its own `fit` (scikit-learn, multitask): the same summary fields as the loop below."""
    inputs = FitInputs(task=task, params=p, pretrained=PRETRAINED, tokenizer=TOKENIZER, prepared=TASK.parent,
                       checkpoints=checkpoints)
    started = time.perf_counter()
    with PeakMemory() as memory:
        fitted = strategy.fit(inputs, options, out)
    seconds = time.perf_counter() - started
    summary = {"strategy": strategy.name, "init": strategy.init,
               "trainable_pct": 100 * fitted["trainable_params"] / fitted["total_params"],
               "train_seconds": seconds, "steps": 0, "peak_memory_mb": memory.mb,
               "optimizer_state_mb": 0.0, **fitted}
    stored = out / "adapter" if (out / "adapter").exists() else out / "model"  # sft_lora keeps its adapter
    summary["stored_mb"] = _folder_bytes(stored) / 2**20
    write_json(out / "summary.json", summary)
    return summary


def finetune(p: FinetuneParams, name: str, out: Path, checkpoints: Path,
             task: datasets.DatasetDict | None = None, resume: str | None = None) -> dict:
    """Train one strategy; write the servable model (and adapter, for PEFT) into `out`.

    `task` replaces the prepared splits: data_efficiency trains on subsets, multitask's single-task
    comparison on AG News. `resume` is a checkpoint of an earlier, killed run to continue from
    (strategies that train themselves start again).
    """
    strategy = get_strategy(name)
    options = strategy.Options.model_validate(p.options.get(name, {}))
    task = load_prepared(TASK) if task is None else task
    if strategy.fit:
        return _fit_itself(strategy, options, p, task, out, checkpoints)
    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    if is_tagging(task["train"]):  # ner: a tag per word, scored on entities (transferflow/token_classification.py)
        label_names = task["train"].features[TAGS].feature.names
        data, collator = encode_tagged(task, tokenizer, p.max_length), DataCollatorForTokenClassification(tokenizer)
        auto_class, compute_metrics = AutoModelForTokenClassification, trainer_metrics(label_names)
    else:
        label_names = task["train"].features["label"].names
        data, collator = encode_task(task, tokenizer, p.max_length), DataCollatorWithPadding(tokenizer)
        auto_class, compute_metrics = AutoModelForSequenceClassification, _compute_metrics
    model = strategy.adapt(build_classifier(strategy.init, label_names, p.seed, auto_class, p.pooling), options)
    trainable, total = count_parameters(model)
    learning_rate = options.learning_rate or p.learning_rate
    args = training_arguments(
        p, str(checkpoints), load_best_model_at_end=True, metric_for_best_model=p.metric,
        greater_is_better=True, learning_rate=learning_rate, **strategy.training_args(options),
    )
    optimizer = None
    if strategy.param_groups:
        groups = strategy.param_groups(model, learning_rate, options)
        optimizer = torch.optim.AdamW(groups, lr=learning_rate, weight_decay=p.weight_decay)
    trainer = Trainer(
        model=model, args=args, train_dataset=data["train"], eval_dataset=data["validation"],
        optimizers=(optimizer, None),
        data_collator=collator, compute_metrics=compute_metrics,
        callbacks=[MlflowMetrics(), StopOnDivergence(), EarlyStoppingCallback(early_stopping_patience=p.early_stopping_patience)],
    )
    started = time.perf_counter()
    with PeakMemory() as memory:
        result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    validation = trainer.evaluate()  # the best checkpoint, reloaded at the end of training
    if hasattr(trainer.model, "peft_config"):  # PEFT: the adapter alone is what must be stored per task
        trainer.model.save_pretrained(out / "adapter")
    served = strategy.export(trainer.model)
    save_classifier(served, out / "model")  # plain model, or adapter + base where it cannot merge
    tokenizer.save_pretrained(out / "model")
    stored = out / "adapter" if (out / "adapter").exists() else out / "model"
    summary = {
        "strategy": name,
        "init": strategy.init,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_pct": 100 * trainable / total,
        "train_seconds": seconds,
        "steps": result.global_step,
        "resumed": resume is not None,
        "peak_memory_mb": memory.mb,  # this strategy's training alone
        "optimizer_state_mb": optimizer_state_mb(trainer.optimizer),  # after training: every state allocated
        "stored_mb": _folder_bytes(stored) / 2**20,
        "validation": validation_summary(validation),
    }
    write_json(out / "summary.json", summary)
    return summary


def main(params: Params, strategy: str, parent_run_id: str | None = None) -> dict:
    """Fine-tune with one strategy."""
    p = params.finetune
    get_strategy(strategy)  # fail before any work on an unknown name
    checkpoints = Path("checkpoints/finetune") / strategy
    with stage_run("finetune", p.model_dump(), parent_run_id, run_name=f"finetune-{strategy}"):
        mlflow.set_tag("transferflow.strategy", strategy)
        # a killed run leaves its checkpoints; the same params, code and inputs continue from the last
        resume = resume_point(checkpoints, {"finetune": p.model_dump(mode="json"), "strategy": strategy},
                              [TASK, TOKENIZER, PRETRAINED, *resume_code(strategy)])
        with atomic_dir(Path("artifacts/finetune") / strategy) as tmp:
            summary = finetune(p, strategy, tmp, checkpoints, resume=resume)
        shutil.rmtree(checkpoints, ignore_errors=True)  # finished: nothing left to resume
        figures = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        figures |= {f"validation_{k}": v for k, v in summary["validation"].items()}
        write_json(STAGE.for_item(strategy).metrics[0], figures)
        mlflow.log_metrics(figures)
    return summary


if __name__ == "__main__":
    stage_cli(main, with_item=True)
