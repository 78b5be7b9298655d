"""A team's setup, for real: PostgreSQL, an MLflow server and a Prefect server on it (`transferflow services`),
the smoke pipeline deployed to a work pool and run by a worker, and two flows at once on one registry.

Needs PostgreSQL's server programs (Debian: `apt-get install postgresql`; `.ci/run` installs them).
Without them the module is skipped, except under CI, where a skip would hide the missing install.
Everything listens on 127.0.0.1, on ports free when the module starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import make_workspace
from tests.helpers import predict_in_fresh_process, set_params
from tests.test_registry_lock import held_intervals
from transferflow import services
from transferflow.registry import history
from transferflow.schedule import free_port

CLI = [sys.executable, "-m", "transferflow.cli"]
pytestmark = pytest.mark.services


def _postgres_installed() -> bool:
    try:
        services._postgres_bin("pg_ctl")
        return True
    except services.ServicesError:
        return False


if not _postgres_installed():
    if os.environ.get("CI"):
        pytest.fail("PostgreSQL's server programs are missing: .ci/run installs them (apt-get install postgresql)",
                    pytrace=False)
    pytest.skip("PostgreSQL's server programs are not installed (apt-get install postgresql)", allow_module_level=True)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The three servers, started through the CLI as a user would, stopped and removed at the end."""
    # PostgreSQL runs as the postgres user, which may not enter pytest's root-only (0700) folders
    root = Path(tempfile.mkdtemp(prefix="transferflow-services-"))
    root.chmod(0o711)
    root = root / ".services"
    ports = ["--postgres-port", str(free_port()), "--mlflow-port", str(free_port()),
             "--prefect-port", str(free_port())]
    base = [*CLI, "services", "--dir", str(root), *ports]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL")}
    started = subprocess.run([*base, "start"], capture_output=True, text=True, env=env, timeout=600)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield {"base": base, "env": env, "first_start": started.stdout,
               "exports": dict(line.removeprefix("export ").split("=", 1)
                               for line in started.stdout.splitlines() if line.startswith("export "))}
    finally:
        subprocess.run([*base, "stop"], capture_output=True, text=True, env=env, timeout=300)
        shutil.rmtree(root.parent, ignore_errors=True)


@pytest.fixture
def team_env(servers, monkeypatch) -> dict:
    """This process and its children pointed at the servers by the two exported variables alone."""
    for key, value in servers["exports"].items():
        monkeypatch.setenv(key, value)
    return os.environ.copy()


def test_start_prints_the_exports_and_is_harmless_twice(servers):
    lines = servers["first_start"].strip().splitlines()
    assert lines[-2].startswith("export MLFLOW_TRACKING_URI=http://127.0.0.1:")
    assert lines[-1].startswith("export PREFECT_API_URL=http://127.0.0.1:") and lines[-1].endswith("/api")
    again = subprocess.run([*servers["base"], "start"], capture_output=True, text=True, env=servers["env"], timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already running") == 3 and again.stdout.strip().splitlines()[-2:] == lines[-2:]
    status = subprocess.run([*servers["base"], "status"], capture_output=True, text=True, env=servers["env"])
    assert status.returncode == 0 and status.stdout.count(": up") == 3


def test_registry_decisions_take_turns_through_the_prefect_server(team_env):
    (_, first_end), (second_start, _) = held_intervals(team_env["MLFLOW_TRACKING_URI"], team_env)
    assert second_start >= first_end


def _workspace(root: Path, model: str) -> Path:
    ws = make_workspace(root)
    # two cheap strategies keep the run short; promotion's gates stay the smoke profile's
    set_params(ws / "params.yaml", register={"model_name": model}, finetune={"strategies": ["scratch", "tfidf"]})
    return ws


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_a_worker_runs_the_deployed_pipeline(servers, team_env, tmp_path):
    ws = _workspace(tmp_path / "ws", "services-worker")
    pool = "transferflow-test"
    deployed = subprocess.run([*CLI, "deploy", "--pool", pool, "--name", "smoke"], cwd=ws, capture_output=True,
                              text=True, env=team_env, timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    triggered = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", "transferflow-pipeline/smoke"],
                               cwd=ws, capture_output=True, text=True, env=team_env, timeout=120)
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    # The worker runs in another folder: the deployment says where the workspace is.
    worker = subprocess.run([sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--run-once",
                             "--limit", "1"], cwd=tmp_path, capture_output=True, text=True, env=team_env, timeout=1200)
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Prefect read its settings at import, before the server existed: name the server for this client
    with temporary_settings({PREFECT_API_URL: team_env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    assert [r.state.name for r in runs if r.deployment_id] == ["Completed"]
    assert (ws / "artifacts/evaluate/leaderboard.json").is_file()
    mlflow = MlflowClient(team_env["MLFLOW_TRACKING_URI"])
    assert str(mlflow.get_model_version_by_alias("services-worker", "champion").version) == "1"


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_two_flows_at_once_register_two_versions_and_move_the_champion_once_per_decision(servers, team_env,
                                                                                         tmp_path):
    model = "services-concurrent"
    spaces = [_workspace(tmp_path / name, model) for name in ("alice", "bob")]
    flows = [subprocess.Popen([*CLI, "run"], cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=team_env) for ws in spaces]
    outputs = [flow.communicate(timeout=1500)[0] for flow in flows]
    assert [flow.returncode for flow in flows] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)

    client = MlflowClient(team_env["MLFLOW_TRACKING_URI"])
    assert sorted(int(v.version) for v in client.search_model_versions(f"name='{model}'")) == [1, 2]
    registered = [json.loads((ws / "metrics/register.json").read_text()) for ws in spaces]
    judged = [json.loads((ws / "metrics/promote.json").read_text()) for ws in spaces]
    # each flow judged the version it registered, not whichever @challenger held at the time
    assert [str(r["version"]) for r in registered] == [j["challenger"] for j in judged]
    moves = history(client, model)
    print("two flows at once:", [(j["challenger"], j["decision"], j.get("reason", "")) for j in judged],
          "champion moves:", [(m["action"], m["version"]) for m in moves])  # for a closing note: pytest -rP
    # one first champion at registration, then at most one move per promotion decision
    assert [m["action"] for m in moves].count("register") == 1
    assert [m["action"] for m in moves].count("promote") == sum(j["decision"] == "promoted" for j in judged)
    assert str(client.get_model_version_by_alias(model, "champion").version) == moves[-1]["version"]
    # each version's artifacts are its own: both load and predict in a fresh process
    for version in ("1", "2"):
        labels = predict_in_fresh_process(f"models:/{model}/{version}", ["a gripping , funny film", "dull"])
        assert len(labels) == 2 and set(labels) <= {"negative", "positive"}
