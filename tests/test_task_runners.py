"""Parallel fine-tunes on Dask (`flow.task_runner: dask`): the smoke flow with two cheap strategies on a
LocalCluster of two workers. tests/test_pipeline_flow.py runs the process runner the same way."""

from __future__ import annotations

import os

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers import set_params, stage_runs
from transferflow.tracking import PID_TAG

STRATEGIES = ["scratch", "tfidf"]  # one torch Trainer fine-tune, one scikit-learn: the two kinds, cheaply


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_finetunes_run_on_a_dask_local_cluster(workspace, monkeypatch, tmp_path):
    # Set in this process only: the child runs land in this store only if the workers log where the flow does.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'dask.db'}")
    set_params(workspace / "params.yaml", finetune={"strategies": STRATEGIES},
               flow={"parallel_finetunes": 2, "task_runner": "dask"})
    threads_before = os.environ.get("OMP_NUM_THREADS")
    from flows.pipeline import pipeline

    result = pipeline(params_file="params.yaml")

    client = MlflowClient()
    runs = stage_runs(client, result["mlflow_run_id"])
    experiment = client.get_run(result["mlflow_run_id"]).info.experiment_id
    for strategy in STRATEGIES:
        assert runs[f"finetune-{strategy}"] == "FINISHED", runs
        run = client.search_runs([experiment], filter_string=f"attributes.run_name = 'finetune-{strategy}'")[0]
        assert run.data.tags[PID_TAG] != str(os.getpid())  # trained in a Dask worker process
        assert "validation_accuracy" in run.data.metrics
        assert (workspace / "artifacts" / "finetune" / strategy).is_dir()  # the worker ran in the workspace
    assert {r["strategy"] for r in result["leaderboard"]} == set(STRATEGIES)
    # Dask's Nanny sets OMP_NUM_THREADS=1 in the process that starts it; the flow undoes that
    assert os.environ.get("OMP_NUM_THREADS") == threads_before
