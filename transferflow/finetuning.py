"""Fine-tune one strategy and write its servable model folder: the finetune stage's work, also run by
data_efficiency (on subsets) and multitask (its single-task comparison).

    summary = finetune(inputs, "lora", out)      # out/model, out/adapter (PEFT), out/summary.json

A GradientStrategy trains on the family's task head through transferflow.training.train; a FitStrategy
fits itself. Either way the summary has the same fields, assembled here once, and the checkpoint is
chosen on validation only.
"""

from __future__ import annotations

import time
from pathlib import Path

from transferflow.files import write_json
from transferflow.strategy import Adaptation, FitInputs, FitStrategy, GradientStrategy, Target, get_strategy
from transferflow.training import (PeakMemory, count_parameters, optimizer_state_mb, train, training_arguments,
                                   validation_summary)


def finetune(inputs: FitInputs, name: str, out: Path, resume: str | None = None) -> dict:
    """Train strategy `name` on inputs.task; write the servable model (and adapter, for PEFT) into `out`.
    `resume` is a checkpoint of an earlier, killed run to continue from (FitStrategies start again)."""
    strategy = get_strategy(name)
    options = strategy.Options.model_validate(inputs.params.options.get(name, {}))
    if isinstance(strategy, FitStrategy):
        with Measured() as measured:
            fitted = strategy.fit(inputs, options, out)
    else:
        fitted, measured = _train(strategy, options, inputs, out, resume)
    summary = {
        "strategy": name,
        "init": strategy.init,
        "trainable_params": fitted.pop("trainable_params"),
        "total_params": fitted.pop("total_params"),
        "train_seconds": measured.seconds,
        "steps": fitted.pop("steps", 0),
        "resumed": resume is not None and isinstance(strategy, GradientStrategy),
        "peak_memory_mb": measured.mb,  # this strategy's training alone
        "optimizer_state_mb": fitted.pop("optimizer_state_mb", 0.0),
        "stored_mb": _folder_bytes(out / "adapter" if (out / "adapter").exists() else out / "model") / 2**20,
        **fitted,  # validation, notes and the strategy's own figures
    }
    summary["trainable_pct"] = 100 * summary["trainable_params"] / summary["total_params"]
    write_json(out / "summary.json", summary)
    return summary


def _train(strategy: GradientStrategy, options, inputs: FitInputs, out: Path, resume: str | None):
    from transformers import AutoTokenizer

    p, head, task = inputs.params, inputs.head, inputs.task
    tokenizer = AutoTokenizer.from_pretrained(inputs.tokenizer)
    label_names = head.label_names(task)
    model = head.build(inputs.pretrained, strategy.init, label_names, p)
    adaptation = strategy.adaptation(model, options, Target(inputs.family, head))
    model = adaptation.model
    trainable, total = count_parameters(model)
    data = head.encode(task, tokenizer, p, model)
    learning_rate = options.learning_rate or p.learning_rate
    args = training_arguments(p, str(inputs.checkpoints), load_best_model_at_end=True, metric_for_best_model=p.metric,
                              greater_is_better=True, learning_rate=learning_rate, **adaptation.optimizer)
    optimizer = grouped_optimizer(adaptation, learning_rate, p.weight_decay)
    scoring = {"compute_metrics": head.compute_metrics(label_names)}
    if head.served_scoring:
        scoring = {"score_validation": lambda model: head.validation_scores(model, tokenizer, task["validation"],
                                                                            label_names, p)}
    with Measured() as measured:
        trainer, result = train(model, args, data["train"], head.collator(tokenizer, model),
                                eval_data=data["validation"], optimizer=optimizer, patience=p.early_stopping_patience,
                                resume=resume, **scoring)
    validation = trainer.evaluate()  # the best checkpoint, reloaded at the end of training
    if hasattr(trainer.model, "peft_config"):
        # The adapter alone is what must be stored per task; saved before export, which may merge it away.
        trainer.model.save_pretrained(out / "adapter")
    head.save(strategy.export(trainer.model), tokenizer, out / "model", label_names, p)
    fitted = {"trainable_params": trainable, "total_params": total, "steps": result.global_step,
              "optimizer_state_mb": optimizer_state_mb(trainer.optimizer),  # after training: every state allocated
              "validation": validation_summary(validation)}
    notes = head.notes({k.removeprefix("eval_"): v for k, v in validation.items()})
    return fitted | ({"notes": notes} if notes else {}), measured


class Measured(PeakMemory):
    """Seconds and peak memory (MiB) of a block: the training itself, not loading or saving."""

    def __enter__(self) -> Measured:
        self._started = time.perf_counter()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.seconds = time.perf_counter() - self._started


def grouped_optimizer(adaptation: Adaptation, learning_rate: float, weight_decay: float):
    """AdamW over the adaptation's parameter groups, each at its lr_scale times `learning_rate`; None
    (Trainer builds args.optim over every trainable parameter) when it has no groups."""
    import torch

    if not adaptation.param_groups:
        return None
    groups = [{k: v for k, v in g.items() if k != "lr_scale"} | {"lr": learning_rate * g["lr_scale"]}
              for g in adaptation.param_groups]
    return torch.optim.AdamW(groups, lr=learning_rate, weight_decay=weight_decay)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
