"""register: the model with the best validation score becomes a new version in the MLflow registry.

    python -m tasks.register [--params params.yaml]

The new version gets alias `challenger`; if no version holds `champion` yet, it gets `champion` too
(promotion beyond that is a gated decision: tasks/promote.py). The version's description is its model
card (transferflow/model_card.py). If anything fails after the version is created, the version is
deleted: a failed run leaves no registry entry.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import mlflow
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from transferflow import model_card, registry
from transferflow.config import Params
from transferflow.files import read_json, write_json
from transferflow.registry_lock import registry_lock
from transferflow.serving import pyfunc_arguments
from transferflow.stage import StageSpec, stage_cli
from transferflow.tracking import stage_run

LEADERBOARD = Path("artifacts/evaluate/leaderboard.json")
DATA_CARD = Path("artifacts/prepare/data_card.json")
STAGE = StageSpec(
    name="register",
    params=("register",),
    # transferflow/served: the scripts copied into each registered model (MLflow code_paths), read by path
    deps=("transferflow/served", str(LEADERBOARD), "artifacts/prepare", "artifacts/finetune"),
    outs=(),
    metrics=("metrics/register.json",),
)


def data_dvc_hash(dvc_file: Path = Path("data.dvc")) -> str:
    """The DVC hash of data/ in data.dvc: the version of the raw data the workspace says it holds."""
    try:
        return yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    except (OSError, KeyError, TypeError, IndexError):
        return "unknown"


def data_hash(card: Path = DATA_CARD) -> str:
    """Content hash of the task splits this model was trained and scored on, from the data card that
    prepare wrote while reading them: what was read, whatever data.dvc claims."""
    splits = read_json(card)["task"]["splits"]
    return hashlib.sha256("".join(f"{name}:{splits[name]['sha256']}" for name in sorted(splits)).encode()).hexdigest()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def params_hash(params: Params) -> str:
    return hashlib.sha256(json.dumps(params.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def has_alias(client: MlflowClient, name: str, alias: str) -> bool:
    try:
        client.get_model_version_by_alias(name, alias)
        return True
    except MlflowException:
        return False


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Register the best model by validation score."""
    p = params.register
    rows = read_json(LEADERBOARD)
    best = max(rows, key=lambda r: r[f"validation_{p.metric}"])
    strategy = best["strategy"]
    tags = {"strategy": strategy, "data_hash": data_hash(), "data_dvc_hash": data_dvc_hash(),
            "git_commit": git_commit(), "params_hash": params_hash(params),
            f"validation_{p.metric}": str(best[f"validation_{p.metric}"]),
            f"test_{p.metric}": str(best[f"test_{p.metric}"])}
    with stage_run("register", p.model_dump(), parent_run_id) as run:
        mlflow.set_tags({f"transferflow.{k}": v for k, v in tags.items()})
        folder = Path("artifacts/finetune") / strategy / "model"
        info = mlflow.pyfunc.log_model(name="model", **pyfunc_arguments(folder))
        client = MlflowClient()
        created = mlflow.register_model(info.model_uri, p.model_name, tags=tags)
        try:
            aliases = ["challenger"]
            client.set_registered_model_alias(p.model_name, "challenger", created.version)
            # The card (description + model_card.md) is written before @champion moves, so a failure
            # leaves neither a version nor a champion history entry pointing at a deleted one.
            model_card.publish(client, p.model_name, created.version,
                               model_card.collect(params, strategy, info.model_uri, tags))
            with registry_lock(p.model_name, client.tracking_uri):  # two first versions: one champion
                if not has_alias(client, p.model_name, "champion"):
                    registry.set_champion(client, p.model_name, created.version, action="register",
                                          reason="first registered version", run_id=run.info.run_id)
                    aliases.append("champion")
        except BaseException:
            client.delete_model_version(p.model_name, created.version)
            raise
        result = {"model_name": p.model_name, "version": int(created.version), "strategy": strategy,
                  "aliases": aliases, "run_id": run.info.run_id}
        write_json(STAGE.metrics[0], result)
    return result


if __name__ == "__main__":
    stage_cli(main)
