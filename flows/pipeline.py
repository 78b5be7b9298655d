"""The training pipeline as a Prefect flow: the same stage functions `dvc repro` runs, as tasks.

    transferflow run [--params params.yaml] [--data-efficiency]

Each stage is cached on its params and the content of its inputs (StageSpec.cache_key), so a re-run
with nothing changed skips pretraining (and everything else) and says so; a stage whose outputs were
deleted, or rewritten by a run with other params or data, runs again (StageSpec.cached_outputs_intact).
One MLflow parent run per flow run, a child run per stage and per strategy. It ends with the promotion
gate (tasks/promote.py), never cached, so a scheduled run (`transferflow schedule`) promotes on its own
or leaves the champion.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner

from tasks import data_efficiency, evaluate, finetune, prepare, pretrain, promote, register, tokenizer
from transferflow.config import FlowParams, load_params
from transferflow.errors import TransferflowError
from transferflow.tracking import pipeline_run
from transferflow.training import share_cores
from transferflow.workspace_lock import workspace_lock

STAGES: list[ModuleType] = [prepare, tokenizer, pretrain, finetune, evaluate, register, promote, data_efficiency]
"""Stage order of the flow, and of dvc.yaml (flows/dvc_yaml.py generates it from these stages, in this order)."""

RETRIES = {"prepare": 2, "register": 2}
"""Stages where a retry can help: hub downloads (prepare) and a flaky tracking server (register, which
deletes a half-made version before raising, so a retry cannot register twice). Only a transient
fault is retried (retry_if_transient): bad data fails the first time, with one message."""


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry a network fault or a tracking server that is away, not a
    deterministic error (bad data, bad params), which would fail the same way twice more."""
    import httpx
    import requests

    try:
        state.result()
    except TransferflowError as err:
        return err.transient
    except (ConnectionError, TimeoutError, httpx.TransportError, requests.ConnectionError, requests.Timeout):
        return True
    except Exception:  # noqa: BLE001 (anything else is a bug or bad input: retrying cannot help)
        return False
    return False


@contextmanager
def finetune_runner(settings: FlowParams) -> Iterator[TaskRunner]:
    """The started task runner of parallel fine-tunes (`flow.task_runner`).

    `process`: a pool of parallel_finetunes processes on this machine, each on its share of the cores.
    `dask`: a Dask LocalCluster of as many one-thread worker processes here, cores shared the same way;
    or, with `dask_address`, that running cluster, whose workers' threads decide how many fine-tunes run
    at once. Its workers need the project installed (the same lock), the workspace at this same
    absolute path on a shared file system (a copy would not do: evaluate, here, reads what the
    fine-tunes wrote there), and a tracking store that every machine reaches (a server, not SQLite);
    they train on the threads their machine gives them (OMP_NUM_THREADS, which Dask sets to 1 unless
    the shell that starts `dask worker` sets it). flows/dask_runner.py readies each worker: the workspace
    and points it at the flow's tracking store."""
    workers = settings.parallel_finetunes
    if settings.task_runner == "process":
        with ProcessPoolTaskRunner(max_workers=workers, initializer=share_cores, initargs=(workers,)) as runner:
            yield runner
        return
    from flows.dask_runner import dask_runner  # imported here: distributed costs every flow a second at start

    with dask_runner(workers, settings.dask_address) as runner:
        yield runner


UNCACHED = {module.STAGE.name for module in STAGES if module.STAGE.always_changed}
"""Stages that always run (promote): the promotion gate's answer depends on the registry (who holds which
alias), which no cache key sees; it skips on its own when the pair was already judged."""


def as_task(module: ModuleType):
    spec = module.STAGE
    caching = {"cache_policy": NO_CACHE} if spec.name in UNCACHED else {
        "cache_key_fn": lambda ctx, inputs: spec.cache_key(inputs["params"], inputs.get("strategy")),
        "persist_result": True}
    return task(
        module.main,
        name=spec.name,
        retries=RETRIES.get(spec.name, 0),
        retry_delay_seconds=5,
        retry_condition_fn=retry_if_transient,
        **caching,
    )


TASKS = {module.STAGE.name: as_task(module) for module in STAGES}
STAGE_SPECS = {module.STAGE.name: module.STAGE for module in STAGES}


@flow(name="transferflow-pipeline")
def pipeline(params_file: str = "params.yaml", data_efficiency: bool = False) -> dict:
    """Data -> tokenizer -> pretraining -> fine-tuning per strategy -> evaluation -> registry; with
    `data_efficiency`, also the data-efficiency experiment (strategies retrained on data fractions)."""
    logger = get_run_logger()
    params = load_params(params_file)
    cached: list[str] = []

    def prepared(stage: str, *args):
        """The stage's task, told to run again if its outputs were deleted or rewritten, and its cache key."""
        stage_task, spec = TASKS[stage], STAGE_SPECS[stage]
        key = None if stage in UNCACHED else spec.cache_key(params, *args)
        if key and not spec.cached_outputs_intact(key, *args):
            stage_task = stage_task.with_options(refresh_cache=True)
        return stage_task, key

    def finished(stage: str, args: tuple, key: str | None, state):
        result = state.result()  # raises if the stage failed: nothing is recorded for it
        if state.name == "Cached":
            cached.append(stage if not args else f"{stage}[{args[0]}]")
        elif key:
            STAGE_SPECS[stage].record_outputs(key, *args)
        return result

    def run(stage: str, *args):
        stage_task, key = prepared(stage, *args)
        return finished(stage, args, key, stage_task(params, *args, parent_run_id=parent, return_state=True))

    def finetune_all(strategies: list[str], settings: FlowParams) -> None:
        """Each strategy's fine-tune in a process of its own, on `settings.task_runner`; every one runs to
        its end before the first failure is raised, so one bad strategy costs the others nothing."""
        with finetune_runner(settings) as runner:
            submitted = []
            for strategy in strategies:
                stage_task, key = prepared("finetune", strategy)
                future = runner.submit(stage_task, {"params": params, "strategy": strategy, "parent_run_id": parent})
                submitted.append((strategy, key, future))
            for _, _, future in submitted:
                future.wait()
            for strategy, key, future in submitted:
                finished("finetune", (strategy,), key, future.state)

    with workspace_lock(), pipeline_run("pipeline", tags={"transferflow.params_file": params_file}) as parent_run:
        parent = parent_run.info.run_id
        for stage in ("prepare", "tokenizer", "pretrain"):
            run(stage)
        if params.flow.parallel_finetunes > 1:
            finetune_all(params.finetune.strategies, params.flow)
        else:
            for strategy in params.finetune.strategies:
                run("finetune", strategy)
        rows = run("evaluate")
        registered = run("register")
        promotion = run("promote")  # a scheduled run promotes on its own, or leaves the champion
        efficiency = run("data_efficiency") if data_efficiency else None  # optional: costs several trainings
        if cached:
            logger.info("unchanged inputs, reused cached results for: %s", ", ".join(cached))
        logger.info("promotion gate: %s", promote.summary(promotion))
        create_markdown_artifact(key="promotion", markdown=promote.markdown(promotion),
                                 description=f"Promotion gate: {promotion['decision']}")
        create_markdown_artifact(key="leaderboard", markdown=(
            f"# transferflow leaderboard\n\nSorted by validation {params.register.metric}; test is reported, "
            f"never used to choose.\n\n{evaluate.leaderboard_markdown(rows)}\n"
            f"Registered: `{registered['model_name']}` version {registered['version']} "
            f"({registered['strategy']}), aliases {', '.join(registered['aliases'])}.\n"),
            description="Fine-tuning strategies compared on the same data")
    return {"leaderboard": rows, "registered": registered, "promotion": promotion, "cached": cached,
            "data_efficiency": efficiency, "mlflow_run_id": parent}
