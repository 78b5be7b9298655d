"""finetune: fine-tune the pretrained model on the task with one strategy.

    python -m tasks.finetune [--params params.yaml] STRATEGY

The work is transferflow/finetuning.py's: a gradient strategy trains on the family's task head
(a classifier, a tagger for ner, prompt + label word on gpt, text-to-text on t5) through the one
training loop; a strategy that fits itself (tfidf, features, prompt, multitask) is called instead.
Early stopping and checkpoint selection use validation only.
Writes artifacts/finetune/STRATEGY/{model,adapter?,summary.json} in one rename. Checkpoints go to
checkpoints/finetune/STRATEGY every eval_steps; a killed run re-run with the same params continues from
the last one (as pretrain does) and ends with the same figures as a run that was never stopped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import datasets
import mlflow

from transferflow.config import FinetuneParams, Params
from transferflow.family import get_family
from transferflow.files import atomic_dir, load_prepared, write_json
from transferflow.finetuning import finetune
from transferflow.stage import REPO, StageSpec, stage_cli
from transferflow.strategy import FitInputs, get_strategy
from transferflow.tracking import stage_run
from transferflow.training import resume_point

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
    loads=("tasks/strategies/{item}.py", "transferflow/families"),
)


def resume_code(strategy: str) -> list[Path]:
    """The strategy's code deps, found beside this file wherever the stage runs: a change there starts afresh."""
    return [REPO / dep for dep in STAGE.for_item(strategy).code]


def fit_inputs(params: Params, checkpoints: Path, task: datasets.DatasetDict | None = None) -> FitInputs:
    """What fine-tuning reads, from this workspace: the prepared splits (or `task`: data_efficiency trains
    on subsets), the pretrained model and tokenizer, the family and task type from params."""
    return FitInputs(task=load_prepared(TASK) if task is None else task, params=params.finetune,
                     family=get_family(params.pretrain.family), task_type=params.prepare.task_type,
                     pretrained=PRETRAINED, tokenizer=TOKENIZER, prepared=TASK.parent, checkpoints=checkpoints)


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
            summary = finetune(fit_inputs(params, checkpoints), strategy, tmp, resume=resume)
        shutil.rmtree(checkpoints, ignore_errors=True)  # finished: nothing left to resume
        figures = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        figures |= {f"validation_{k}": v for k, v in summary["validation"].items()}
        write_json(STAGE.for_item(strategy).metrics[0], figures)
        mlflow.log_metrics(figures)
    return summary


if __name__ == "__main__":
    stage_cli(main, with_item=True)
