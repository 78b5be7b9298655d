"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient


def set_params(path: Path, **sections) -> None:
    """Update sections of a params file in place: set_params(p, register={"model_name": "x"})."""
    data = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def stage_runs(client: MlflowClient, parent_run_id: str) -> dict[str, str]:
    """{child run name: status} of a pipeline's parent run."""
    parent = client.get_run(parent_run_id)
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    return {r.info.run_name: r.info.status for r in runs}


def predict_in_fresh_process(model_uri: str, texts: list[str]) -> list[str]:
    """Load a registered model in a new interpreter, as a user would, and predict."""
    code = ("import json, sys, mlflow; m = mlflow.pyfunc.load_model(sys.argv[1]); "
            "print(json.dumps(list(m.predict(json.loads(sys.argv[2])))))")
    import json

    out = subprocess.run([sys.executable, "-c", code, model_uri, json.dumps(texts)], capture_output=True,
                         text=True, env=os.environ.copy(), cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
