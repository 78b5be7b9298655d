"""Fine-tunes on Dask (`flow.task_runner: dask`): prefect-dask's DaskTaskRunner, with each worker readied
for this flow's workspace. Its own module, imported only when the flow runs on Dask: importing
`distributed` costs about a second, which every other flow run (and process-pool worker) would pay.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed.diagnostics.plugin import WorkerPlugin
from prefect_dask import DaskTaskRunner

from transferflow.training import share_cores

TRACKING_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")
"""Where a fine-tune logs its MLflow child run, which must be where the flow's parent run is."""


class DaskWorkspace(WorkerPlugin):
    """Readies each Dask worker for this flow's fine-tunes, a worker that joins or restarts later too: it
    moves into the flow's workspace (stages read and write paths relative to it), logs where the flow
    logs (TRACKING_ENV, as the flow had them when it made this), and on a LocalCluster (`workers` given)
    trains on its share of the cores, as share_cores does for the process runner. A worker without the
    workspace's path fails the run at its start, naming the path."""

    name = "transferflow-workspace"  # registered again by each flow run, it replaces the last one's

    def __init__(self, workers: int | None):
        self.workspace, self.workers = os.getcwd(), workers
        self.tracking = {key: os.environ.get(key) for key in TRACKING_ENV}

    def setup(self, worker) -> None:
        os.chdir(self.workspace)
        for key, value in self.tracking.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self.workers:
            share_cores(self.workers)


@contextmanager
def environ_restored() -> Iterator[None]:
    """Dask's Nanny writes its pre-spawn variables (OMP_NUM_THREADS=1 and others:
    distributed.nanny.pre-spawn-environ) into the process that starts a LocalCluster; undone here, so
    that what the flow starts after its fine-tunes is not pinned to one thread."""
    saved = os.environ.copy()
    try:
        yield
    finally:
        for key in os.environ.keys() - saved.keys():
            del os.environ[key]
        os.environ.update(saved)


@contextmanager
def dask_runner(workers: int, address: str | None) -> Iterator[DaskTaskRunner]:
    """The started runner: a LocalCluster of `workers` one-thread worker processes here, or the running
    cluster at `address` (flows/pipeline.py, finetune_runner, says what its workers need)."""
    local = address is None
    runner = (DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1}) if local
              else DaskTaskRunner(address=address))
    with environ_restored(), runner:
        runner.client.register_plugin(DaskWorkspace(workers if local else None))
        yield runner
