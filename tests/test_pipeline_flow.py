"""The smoke pipeline end to end through the Prefect flow: MLflow runs, registry, champion, caching."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from tasks import prepare
from tests.helpers import predict_in_fresh_process, set_params, stage_runs
from transferflow.config import load_params
from transferflow.files import load_prepared
from transferflow.tracking import PID_TAG

MODEL = "flow-e2e"


def test_flow_end_to_end(workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'flow.db'}")
    # two fine-tunes at once, each in its own process: child runs, registry and caching as sequential
    set_params(workspace / "params.yaml", register={"model_name": MODEL}, flow={"parallel_finetunes": 2})
    from flows.pipeline import pipeline

    result = pipeline(params_file="params.yaml")

    client = MlflowClient()
    runs = stage_runs(client, result["mlflow_run_id"])
    expected = {"prepare", "tokenizer", "pretrain", "finetune-scratch", "finetune-full", "finetune-lora",
                "evaluate", "register"}
    assert expected <= set(runs), runs
    assert all(runs[name] == "FINISHED" for name in expected)
    finetune_run = client.search_runs([client.get_run(result["mlflow_run_id"]).info.experiment_id],
                                      filter_string="attributes.run_name = 'finetune-lora'")[0]
    assert "validation_accuracy" in finetune_run.data.metrics
    assert finetune_run.data.tags[PID_TAG] != str(os.getpid())  # trained in a worker process
    assert any(k.startswith("finetune.learning_rate") for k in finetune_run.data.params)
    prepare_run = client.get_run(next(r.info.run_id for r in client.search_runs(
        [finetune_run.info.experiment_id], filter_string="attributes.run_name = 'prepare'")))
    assert {d.dataset.name for d in prepare_run.inputs.dataset_inputs} >= {"task-train", "task-test"}

    champion = client.get_model_version_by_alias(MODEL, "champion")
    challenger = client.get_model_version_by_alias(MODEL, "challenger")
    assert str(champion.version) == str(challenger.version) == "1"
    assert champion.tags["strategy"] in {"scratch", "full", "lora"}
    assert len(champion.tags["data_hash"]) > 8 and champion.tags["params_hash"]

    leaderboard = json.loads(Path("artifacts/evaluate/leaderboard.json").read_text())
    assert {r["strategy"] for r in leaderboard} == {"scratch", "full", "lora"}
    assert leaderboard[0]["strategy"] == champion.tags["strategy"]  # chosen by validation

    labels = predict_in_fresh_process(f"models:/{MODEL}@champion", ["a gripping , funny film", "dull"])
    assert len(labels) == 2 and set(labels) <= {"negative", "positive"}

    again = pipeline(params_file="params.yaml")  # nothing changed: every stage is a cache hit
    assert "pretrain" in again["cached"] and "register" in again["cached"]
    assert len(client.search_model_versions(f"name='{MODEL}'")) == 1

    # A run with other params rewrites the shared artifacts/prepare. The cache entry of these params
    # still matches their key, but not the files on disk: prepare runs again rather than being trusted.
    train_rows = len(load_prepared("artifacts/prepare/task")["train"])
    params = load_params("params.yaml")
    prepare.main(params.model_copy(update={"prepare": params.prepare.model_copy(update={"max_train_rows": 300})}))
    assert len(load_prepared("artifacts/prepare/task")["train"]) == 300
    third = pipeline(params_file="params.yaml")
    assert "prepare" not in third["cached"], third["cached"]
    assert len(load_prepared("artifacts/prepare/task")["train"]) == train_rows

    # One strategy's options changed: that fine-tune runs again, every other stage before evaluate is cached.
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["finetune"]["options"]["lora"]["r"] = 4
    Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    fourth = pipeline(params_file="params.yaml")
    assert {"pretrain", "finetune[scratch]", "finetune[full]"} <= set(fourth["cached"]), fourth["cached"]
    assert "finetune[lora]" not in fourth["cached"]
