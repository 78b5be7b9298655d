"""The one training loop (train) and the pieces around it, for pretraining and every gradient strategy."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
from pathlib import Path
from typing import Callable, TypeVar

import mlflow
import psutil
import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from transformers import Trainer, TrainerCallback, TrainingArguments

from transferflow.config import TrainingParams
from transferflow.errors import TrainingError
from transferflow.files import fingerprint

T = TypeVar("T")


def launched_processes() -> int:
    """How many processes a distributed launch (torchrun, accelerate launch) started; 1 when run plainly."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def on_main_process(compute: Callable[[], T]) -> T:
    """`compute()` run by the main process of a distributed launch alone, its answer handed to every
    process (plainly `compute()` when the process is alone). For what must happen once, such as clearing
    a folder, and for what every process must decide alike, such as a timing probe that each could answer
    differently."""
    if launched_processes() == 1:
        return compute()
    # Joins the launch's process group (gloo on CPU, NCCL on GPUs); TrainingArguments reuses the group.
    state = PartialState(cpu=not torch.cuda.is_available())
    answer = [compute() if state.is_main_process else None]
    broadcast_object_list(answer)
    return answer[0]


def training_arguments(p: TrainingParams, output_dir: str, **overrides) -> TrainingArguments:
    """TrainingArguments from a params section: evaluation and checkpoints every eval_steps."""
    args = dict(
        output_dir=output_dir,
        max_steps=p.max_steps,
        per_device_train_batch_size=p.batch_size,
        per_device_eval_batch_size=p.batch_size * 2,
        learning_rate=p.learning_rate,
        weight_decay=p.weight_decay,
        warmup_steps=int(p.warmup_ratio * p.max_steps),
        max_grad_norm=p.max_grad_norm,
        eval_strategy="steps",
        eval_steps=p.eval_steps,
        save_strategy="steps",
        save_steps=p.eval_steps,
        save_total_limit=2,
        logging_steps=max(1, min(50, p.eval_steps // 4)),
        seed=p.seed,
        data_seed=p.seed,
        report_to=[],  # MlflowMetrics below logs into the stage's own run
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=False,
        logging_nan_inf_filter=False,  # a NaN loss must show (and stop training: StopOnDivergence), not be averaged away
        # Under DDP, each process's own mean loss (DDP averages the gradients). With True, Trainer multiplies the
        # loss by the number of processes for models that take **kwargs, expecting them to divide by the tokens of
        # all processes: T5's loss does not (transformers 5.23), and its loss and gradients came out N times too big.
        average_tokens_across_devices=False,
    )
    args |= overrides
    if not torch.cuda.is_available() and (args.get("bf16") or launched_processes() > 1):
        # Trainer takes bf16 without a GPU, and runs DDP over CPU processes (gloo), only when told it
        # trains on the CPU: otherwise each process of a launch would train a model of its own.
        args["use_cpu"] = True
    return TrainingArguments(**args)


def resume_point(checkpoints: Path, settings: dict, inputs: list[str | Path]) -> str | None:
    """The checkpoint a re-run of a killed stage continues from, or None to start clean.

    Checkpoints are kept only for the same `settings` (the stage's params) and the same content of
    `inputs` (its code and data): a stamp of both sits beside them, and another stamp clears them.
    A kill can leave the newest checkpoint half-written; Trainer writes trainer_state.json last, so a
    folder without it is removed and the one before it is used. Hand-written: transformers'
    get_last_checkpoint takes the newest folder as it is, and knows nothing of params.

    In a distributed launch the main process alone looks and clears, and every process resumes from
    the checkpoint it names. The number of processes counts as a setting there (it sets the global
    batch); a single process's stamp leaves it out, as stamps did before distributed runs.
    """
    if launched_processes() > 1:
        settings = settings | {"processes": launched_processes()}
    return on_main_process(lambda: _checkpoint_to_resume(checkpoints, settings, inputs))


def _checkpoint_to_resume(checkpoints: Path, settings: dict, inputs: list[str | Path]) -> str | None:
    stamp = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    stamp += fingerprint(inputs)
    stamp_file = checkpoints / "stamp.sha256"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        saved = sorted(checkpoints.glob("checkpoint-*"), key=lambda f: int(f.name.split("-")[-1]), reverse=True)
        for folder in saved:
            if (folder / "trainer_state.json").is_file():
                return str(folder)
            shutil.rmtree(folder)
    shutil.rmtree(checkpoints, ignore_errors=True)
    checkpoints.mkdir(parents=True)
    stamp_file.write_text(stamp)
    return None


class MlflowMetrics(TrainerCallback):
    """Log every Trainer log line as MLflow metrics of the active (stage) run, by global step.

    Hand-written rather than Trainer's MLflowCallback: that one starts and ends runs of its own
    and logs every TrainingArguments field as a param; ours keeps the stage's run and params.
    With no active run (training called outside a stage) it logs nothing: mlflow.log_metrics would
    start a run that nothing ends, and every later stage run would then fail to start.
    """

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:  # one run per distributed launch; the logged losses are all-rank means
            return
        figures = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        if "eval_loss" in figures and "eval_perplexity" not in figures and self.perplexity:
            figures["eval_perplexity"] = float(torch.exp(torch.tensor(figures["eval_loss"])))
        if figures and mlflow.active_run():
            mlflow.log_metrics(figures, step=state.global_step)

    def __init__(self, perplexity: bool = False):
        self.perplexity = perplexity


class StopOnDivergence(TrainerCallback):
    """Stop at the first log line whose loss or gradient norm is NaN or inf, naming the step and the
    learning rate. Trainer itself carries on to the end and saves the wreck, which would then be
    evaluated and registered. Hand-written: transformers has no such callback."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm", "eval_loss"):
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                lr = logs.get("learning_rate", args.learning_rate)
                raise TrainingError(f"{key} is {value} at step {state.global_step} (learning rate {lr:g}): "
                                    "training diverged; lower the learning rate")


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def optimizer_state_mb(optimizer: torch.optim.Optimizer | None) -> float:
    """Memory held by the optimizer's state (Adam moments, GaLore projections), in MiB.

    Hand-written: torch reports no such figure. Counts tensors in the state and tensors one level
    inside state objects (GaLore keeps its projection matrix in a projector object).
    """
    if optimizer is None:
        return 0.0
    seen, total = set(), 0
    for state in optimizer.state.values():
        for value in state.values():
            for t in (value, *vars(value).values()) if hasattr(value, "__dict__") else (value,):
                if isinstance(t, torch.Tensor) and id(t) not in seen:
                    seen.add(id(t))
                    total += t.numel() * t.element_size()
    return total / 2**20


class PeakMemory:
    """The most this process's memory rose above its level when the block began, in MiB: one
    strategy's own peak, whatever ran before it in the same process.

        with PeakMemory() as memory:
            trainer.train()
        memory.mb

    On GPU, the CUDA allocator's peak (reset at the start). On CPU, resident memory sampled every
    10 ms by a thread: `ru_maxrss` is the process's peak since it started and is never reset, so
    every strategy of one flow run reported the same figure. Hand-written: Trainer's memory tracker
    measures only its own train/evaluate calls, and the scikit-learn strategies have no Trainer.
    """

    def __enter__(self) -> PeakMemory:
        self.mb = 0.0
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        self._process, self._done = psutil.Process(), threading.Event()
        self._start = self._peak = self._process.memory_info().rss
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if torch.cuda.is_available():
            self.mb = (torch.cuda.max_memory_allocated() - self._start) / 2**20
            return
        self._done.set()
        self._sampler.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.mb = (self._peak - self._start) / 2**20


def validation_summary(metrics: dict[str, float]) -> dict[str, float]:
    """A stage summary's `validation` entry from Trainer.evaluate()'s answer: scores and loss, unprefixed."""
    names = ("accuracy", "precision", "recall", "f1", "loss")
    return {k.removeprefix("eval_"): v for k, v in metrics.items() if k.removeprefix("eval_") in names}


class ServedScoringTrainer(Trainer):
    """Trainer whose every evaluation also scores the validation split the way the served model predicts
    (`score_validation(model)` -> accuracy, f1, ...): generation for text-to-text, label-word likelihoods
    for a decoder trained on prompts (transferflow/heads.py, heads with served_scoring).

    Those scores then reach logging, early stopping and the choice of the best checkpoint like any
    `eval_` metric, so `finetune.metric` picks the checkpoint here as it does for every other head.
    The answers' loss is only a proxy for that: it also counts the end-of-text token after the word, and it
    can fall while the predicted labels stay the same. Hand-written because compute_metrics sees only the
    logits of the gold answer, not the competing label words' scores or the generated text.
    """

    def __init__(self, *args, score_validation: Callable[[torch.nn.Module], dict[str, float]], **kwargs):
        super().__init__(*args, **kwargs)
        self.score_validation = score_validation

    def evaluation_loop(self, *args, metric_key_prefix: str = "eval", **kwargs):
        output = super().evaluation_loop(*args, metric_key_prefix=metric_key_prefix, **kwargs)
        scores = self.score_validation(self.model)
        output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in scores.items()})
        return output


def train(model, args: TrainingArguments, data, collator, *, eval_data=None, optimizer=None,
          compute_metrics: Callable | None = None, score_validation: Callable | None = None,
          patience: int | None = None, perplexity: bool = False, resume: str | None = None):
    """The one training loop: pretraining and every gradient strategy. Returns (trainer, result), result
    None when args.max_steps is 0 (a checkpoint imported as it is: Trainer would read 0 as "train by
    epochs").

    Always: each Trainer log line to the stage's MLflow run, and a stop at the first NaN or inf.
    `patience`: early stopping after that many evaluations without a better args.metric_for_best_model.
    `score_validation`: checkpoints scored as served (ServedScoringTrainer) rather than by compute_metrics.
    `optimizer`: one built from parameter groups; None lets Trainer build args.optim.
    In a distributed launch, every process but the main one is reseeded after Trainer seeded them all
    alike, so that random masks (masked LM, span corruption) and dropout differ between processes; the
    main process keeps the seed, so a single process trains exactly as it would alone.
    """
    from transformers import EarlyStoppingCallback

    callbacks = [MlflowMetrics(perplexity=perplexity), StopOnDivergence()]
    if patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=patience))
    trainer_class, extra = (ServedScoringTrainer, {"score_validation": score_validation}) if score_validation \
        else (Trainer, {})
    trainer = trainer_class(model=model, args=args, train_dataset=data, eval_dataset=eval_data,
                            data_collator=collator, compute_metrics=compute_metrics,
                            optimizers=(optimizer, None), callbacks=callbacks, **extra)
    if args.process_index:
        torch.manual_seed(args.seed + args.process_index)
    result = trainer.train(resume_from_checkpoint=resume) if args.max_steps else None
    return trainer, result


def share_cores(workers: int) -> None:
    """ProcessPoolTaskRunner's initializer (and DaskWorkspace's on a LocalCluster): each of `workers`
    processes trains on its share of the cores, not on all of them (torch's default), which would
    oversubscribe the machine `workers` times."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
