"""The training flow as a deployment of a Prefect work pool, run by workers rather than by this process.

    transferflow deploy [--pool transferflow] [--cron "0 3 * * *" | --interval 3600] [--params params.yaml]
    prefect worker start --pool transferflow --limit 1      # on each machine that trains, in any folder

`transferflow schedule` serves the flow from the process that scheduled it, on one machine. A team
instead deploys once to a Prefect server (PREFECT_API_URL: a team's, or `make services`) and starts a
worker on every machine that should train; each scheduled or triggered run goes to one free worker.

The deployment names no code storage: the flow is imported by module path (`flows.pipeline`) from the
transferflow installed beside the worker, and runs in the workspace folder given at deploy time (the
process pool's `working_dir`). So every worker machine holds the workspace at that same path: a clone
with `make setup data` done, the same params file. MLFLOW_TRACKING_URI, when set at deploy time, goes
into the runs' environment, so every worker logs to the same tracking server and registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from transferflow.errors import TransferflowError

if TYPE_CHECKING:  # only the annotation names it
    from prefect import Flow

POOL = "transferflow"
"""The default work pool: a `process` pool, whose workers run each flow run as a subprocess."""


class DeployError(TransferflowError):
    """No Prefect server to deploy to, or a work pool of another type under the name."""


def ensure_process_pool(name: str) -> bool:
    """Create the process work pool `name` unless it exists; True if created. A pool of another type
    under that name is an error: its workers would not know how to run a local process."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
                return True
            except ObjectAlreadyExists:  # another deploy created it meanwhile
                pool = client.read_work_pool(name)
    if pool.type != "process":
        raise DeployError(f"work pool {name!r} exists with type {pool.type!r}, not 'process': choose another --pool")
    return False


def deploy_training(pipeline: Flow, params_file: str, pool: str = POOL, name: str = "nightly",
                    cron: str | None = None, interval: float | None = None, workspace: Path | None = None) -> UUID:
    """Create or update the deployment `transferflow-pipeline/<name>` of the training flow `pipeline`
    (flows.pipeline's, handed down by the CLI: this module sits below the flows) in `pool`; returns its id."""
    from prefect.types.entrypoint import EntrypointType

    from transferflow.schedule import configured_api_url, healthy

    api = configured_api_url()
    if not api:
        raise DeployError("deploy needs a Prefect server that workers can reach: start one (`make services`) "
                          "and export PREFECT_API_URL, or use `transferflow schedule` on one machine")
    if not healthy(api):
        raise DeployError(f"the Prefect server at PREFECT_API_URL={api} does not answer")
    workspace = (workspace or Path.cwd()).resolve()
    env = {key: os.environ[key] for key in ("MLFLOW_TRACKING_URI",) if os.environ.get(key)}
    ensure_process_pool(pool)
    return pipeline.deploy(
        name=name, work_pool_name=pool, build=False, push=False, cron=cron, interval=interval,
        parameters={"params_file": params_file},
        job_variables={"working_dir": str(workspace), "env": env},
        description=f"transferflow training on {params_file} in {workspace}",
        tags=["transferflow"],
        entrypoint_type=EntrypointType.MODULE_PATH,  # the installed flows.pipeline, no code upload
        print_next_steps=False, ignore_warnings=True,
    )
