"""The smoke pipeline end to end under DVC (`dvc exp run -S profile=smoke`: Hydra composes params.yaml, then
the stages run), in a fresh copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, require_data
from tests.helpers import predict_in_fresh_process

MODEL = "dvc-e2e"


def _copy_repo(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files, as a fresh clone would have them."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if name.startswith("data/"):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)


def test_dvc_exp_run_end_to_end(tmp_path, monkeypatch):
    require_data()
    repo = tmp_path / "clone"
    _copy_repo(repo)
    (repo / "data").symlink_to(REPO / "data", target_is_directory=True)
    # The task at a path of the user's: prepare's deps follow prepare.task_source.
    shutil.copytree(REPO / "data" / "sst2", repo / "my_task")
    # Every strategy the demo compares, at smoke size: each must run under dvc as under the flow.
    demo_strategies = yaml.safe_load((REPO / "params.yaml").read_text())["finetune"]["strategies"]
    git = ["git", "-c", "user.name=tests", "-c", "user.email=tests@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=repo, check=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'dvc.db'}")
    # dvc and the `python` its stages call must be this interpreter's (the venv's), activated or not.
    env = os.environ | {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}

    # The DVC way to pick a profile: Hydra composes params.yaml from conf/ (the smoke overlay and these
    # overrides), then the pipeline runs. timeout generous: a loaded machine runs this several times slower.
    overrides = ["profile=smoke", f"register.model_name={MODEL}", f"finetune.strategies=[{','.join(demo_strategies)}]",
                 "prepare.task_source=my_task"]
    out = subprocess.run(["dvc", "exp", "run", *(a for o in overrides for a in ("-S", o))], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=2400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert {"prepare", "tokenizer", "pretrain", "evaluate", "register"} <= set(lock)
    assert {f"finetune@{s}" for s in demo_strategies} <= set(lock)
    metrics = json.loads(subprocess.run(["dvc", "metrics", "show", "--json"], cwd=repo, env=env,
                                        capture_output=True, text=True, check=True).stdout)
    assert "metrics/evaluate.json" in json.dumps(metrics)

    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    stages = {r.data.tags.get("transferflow.stage") for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()])}
    assert {"prepare", "tokenizer", "pretrain", "finetune", "evaluate", "register"} <= stages
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    labels = predict_in_fresh_process(f"models:/{MODEL}@champion", ["a gripping , funny film"])
    assert labels[0] in {"negative", "positive"}

    # Everything is up to date but promote, which re-checks the registry on every repro by design.
    status = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True)
    assert set(json.loads(status.stdout)) == {"promote"}, status.stdout

    # One strategy's options, another strategy's file: those two fine-tunes are out of date, no other.
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["finetune"]["options"]["lora"]["r"] = 4
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with open(repo / "tasks" / "strategies" / "tfidf.py", "a") as strategy_file:
        strategy_file.write("# edited\n")
    status = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True)
    # data_efficiency too: it retrains lora (data_efficiency.strategies) with those options, and may run any strategy
    assert set(json.loads(status.stdout)) == {"promote", "finetune@lora", "finetune@tfidf", "data_efficiency"}, status.stdout

    # New content at the same path: prepare, and so everything after it, is out of date.
    dev = repo / "my_task" / "dev.tsv"
    dev.write_text("".join(dev.read_text().splitlines(keepends=True)[:-1]))
    status = subprocess.run(["dvc", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True)
    assert "prepare" in json.loads(status.stdout), status.stdout
