"""Scheduled retraining on a real local Prefect server (127.0.0.1, SQLite), started by `transferflow schedule`.

The training flow (smoke sizes, one strategy to keep it near a minute on 2 cores) is deployed with a
20-second interval. The first run fires on its own and trains; the next finds data and params unchanged,
reuses every cached stage and says so. Ctrl-C then stops the runner and the server it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from transferflow.cli import app
from transferflow.schedule import free_port, healthy, stop_tree

DEADLINE_S = 420
"""Server start, a training run and a cached run; about 3 minutes on 2 busy cores."""


def finished_runs(api: str) -> list[dict]:
    """Runs that ended, oldest first (the schedule also pre-creates many future ones: not these)."""
    query = {"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}, "limit": 50}
    runs = httpx.post(f"{api}/flow_runs/filter", json=query, timeout=10).json()
    return sorted(runs, key=lambda r: r["start_time"])


def log_text(api: str, run_id: str) -> str:
    logs = httpx.post(f"{api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200},
                      timeout=10).json()
    return "\n".join(entry["message"] for entry in logs)


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_scheduled_training_fires_on_its_own_then_reuses_the_cache(workspace, tmp_path):
    name = f"scheduled-{uuid.uuid4().hex[:8]}"
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["finetune"]["strategies"] = ["scratch"]
    params["register"]["model_name"] = name
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {
        "PREFECT_HOME": str(tmp_path / "prefect"),  # its own server database and result cache
        "PREFECT_LOGGING_LEVEL": "INFO",  # the "reused cached results" line must reach the server
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_UI_ENABLED": "false",
    }
    log_path = tmp_path / "schedule.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "transferflow.cli", "schedule", "--interval", "20",
                                 "--port", str(port)], cwd=workspace, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + DEADLINE_S
        done: list[dict] = []
        while len(done) < 2:
            assert proc.poll() is None, log_path.read_text()[-4000:]
            assert time.monotonic() < deadline, f"no 2 runs in {DEADLINE_S} s:\n{log_path.read_text()[-4000:]}"
            runs = finished_runs(api) if healthy(api) else []
            broken = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
            assert not broken, log_text(api, broken[0]["id"]) + log_path.read_text()[-4000:]
            done = [r for r in runs if r["state_type"] == "COMPLETED"]
            time.sleep(3)

        first, second = done[:2]
        assert first["auto_scheduled"] and second["auto_scheduled"]  # created by the schedule, not by us
        assert first["deployment_id"] == second["deployment_id"]
        first_log, second_log = log_text(api, first["id"]), log_text(api, second["id"])
        assert "reused cached results" not in first_log  # it trained
        assert "reused cached results for: prepare, tokenizer, pretrain, finetune[scratch]" in second_log
        assert second["total_run_time"] < first["total_run_time"]

        versions = MlflowClient().search_model_versions(f"name='{name}'")
        assert len(versions) == 1  # the cached run registered nothing new
        assert MlflowClient().get_model_version_by_alias(name, "champion").version == versions[0].version
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does: stop the runner, then the server it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stop_tree(proc)
    assert not healthy(api), "the Prefect server outlived `transferflow schedule`"


def test_a_configured_server_that_is_down_is_one_clear_error(workspace):
    down = f"http://127.0.0.1:{free_port()}/api"
    out = CliRunner().invoke(app, ["schedule", "--cron", "0 3 * * *"], env={"PREFECT_API_URL": down})
    assert out.exit_code == 1 and f"PREFECT_API_URL={down} does not answer" in out.output
    assert "Traceback" not in out.output
    out = CliRunner().invoke(app, ["schedule"])
    assert out.exit_code == 1 and "exactly one of --cron or --interval" in out.output
