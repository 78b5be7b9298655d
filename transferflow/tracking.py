"""MLflow: where runs go, one parent run per pipeline execution, a child run per stage."""

from __future__ import annotations

import os
import socket
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import mlflow
from mlflow.tracking import MlflowClient

from transferflow.errors import TrackingUnavailable  # noqa: F401 (raised here; callers import it from here too)

# MLflow's schema inference warns about integer label columns on every dataset it logs; labels are
# never missing here, so the hint is noise.
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
# It also registers the local-file dataset source twice and warns that a path is ambiguous between them.
warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted", category=UserWarning)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "transferflow"
PARENT_RUN_ENV = "TRANSFERFLOW_PARENT_RUN_ID"
"""A parent run id handed to stages run as separate processes (dvc repro under `transferflow repro`)."""


def is_main_process() -> bool:
    """Whether this process logs: the one process of a plain run, rank 0 of a distributed launch
    (torchrun and accelerate launch set RANK), so that N processes make one run."""
    return int(os.environ.get("RANK", "0")) == 0


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def setup_tracking() -> str:
    """Point MLflow at the tracking store (embedded SQLite by default) and check it answers.

    Fails fast with one error naming the URI, so a down server costs seconds, not a training run.
    """
    uri = tracking_uri()
    # A remote server that is down should answer "unreachable" now, not after minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    mlflow.set_tracking_uri(uri)
    try:
        MlflowClient().search_experiments(max_results=1)
        # By name, every time: mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID itself, and an id from
        # one store is meaningless in another (a test or a user switching MLFLOW_TRACKING_URI).
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT)
    except Exception as err:  # the client raises many types; all mean the same here
        raise TrackingUnavailable(
            f"MLflow tracking at {uri} is unreachable ({type(err).__name__}: {err}). "
            "Start the server or unset MLFLOW_TRACKING_URI to use the embedded SQLite store."
        ) from err
    return uri


def flatten(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"prefix.a.b": 1}: MLflow params are flat."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat |= flatten(name, value)
        else:
            flat[name] = value
    return flat


HOST_TAG, PID_TAG = "transferflow.host", "transferflow.pid"


def _owner_tags() -> dict[str, str]:
    """Which process a run belongs to, so that a later start can tell a run whose process died."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def end_orphaned_runs() -> list[str]:
    """Mark KILLED the runs left RUNNING by a process of this host that is gone (`kill -9`, a power
    cut): MLflow never ends them itself. Runs of other hosts are left alone, since their processes
    cannot be seen from here. A live process with the same pid that started after the run is another
    process: the run is an orphan too. Returns the run ids it ended."""
    import psutil

    client, ended = MlflowClient(), []
    experiment = mlflow.get_experiment_by_name(os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT)
    if experiment is None:
        return ended
    host = socket.gethostname()
    for run in client.search_runs([experiment.experiment_id], max_results=1000,
                                  filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"):
        pid = int(run.data.tags.get(PID_TAG, "0"))
        try:
            alive = psutil.Process(pid).create_time() * 1000 <= run.info.start_time + 1000
        except (psutil.NoSuchProcess, ValueError):
            alive = False
        if not alive:
            client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
    return ended


@contextmanager
def stage_run(stage: str, params: dict[str, Any], parent_run_id: str | None = None,
              run_name: str | None = None) -> Iterator[mlflow.ActiveRun | None]:
    """A child run for one stage, under the pipeline's parent run when there is one.

    The parent comes from the argument (Prefect flow) or from TRANSFERFLOW_PARENT_RUN_ID (stages run
    by dvc in their own processes); a stage run alone gets a top-level run of its own. A stage that
    raises ends its run FAILED. The other processes of a distributed launch get None and no run: the
    stage must log nothing there either (mlflow.log_* would start a run of its own).
    """
    if not is_main_process():
        yield None
        return
    setup_tracking()
    parent_run_id = parent_run_id or os.environ.get(PARENT_RUN_ENV) or None
    if not parent_run_id:
        end_orphaned_runs()
    tags = {"transferflow.stage": stage, **_owner_tags()}
    with mlflow.start_run(run_name=run_name or stage, parent_run_id=parent_run_id, nested=bool(parent_run_id),
                          tags=tags) as run:
        mlflow.log_params(flatten(stage, params))
        yield run


@contextmanager
def pipeline_run(run_name: str, tags: dict[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """The parent run of one pipeline execution; its id is exported for stages in subprocesses."""
    setup_tracking()
    end_orphaned_runs()
    with mlflow.start_run(run_name=run_name, tags={"transferflow.pipeline": "true", **_owner_tags(), **(tags or {})}) as run:
        previous = os.environ.get(PARENT_RUN_ENV)
        os.environ[PARENT_RUN_ENV] = run.info.run_id
        try:
            yield run
        finally:
            if previous is None:
                os.environ.pop(PARENT_RUN_ENV, None)
            else:
                os.environ[PARENT_RUN_ENV] = previous
