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


def tiny_pretrained(family_name: str, folder: Path) -> Path:
    """A tiny pretrained model of a family, made by its own record (transferflow/families/) as the pretrain
    stage would, saved with its tokenizer into `folder`: the tokenizer trained on 400 WikiText lines
    (vocabulary 400), the architecture at width 16 with 2 layers and 64 positions.

    Its weights are drawn at 10x the usual init: features big enough for frozen encoders (head, prefix,
    ia3) and adapters (lora) to fit one batch fast. Not T5's: its attention saturates at that scale."""
    import torch

    from transferflow.config import ModelParams, PretrainParams, TokenizerParams
    from transferflow.family import get_family

    repo = Path(__file__).resolve().parents[1]
    lines = [line for line in (repo / "data/wikitext2/train.txt").read_text().splitlines() if len(line) > 40][:400]
    family = get_family(family_name)
    tokenizer = family.tokenizer(lines, TokenizerParams(vocab_size=400), model_max_length=64)
    p = PretrainParams(family=family_name, model=ModelParams(hidden_size=16, num_layers=2, num_heads=2,
                                                             intermediate_size=32, max_length=64))
    torch.manual_seed(0)
    model = family.build(p, tokenizer, 0.0)
    if family.architecture != "encoder-decoder":
        with torch.no_grad():
            for weight in model.parameters():
                if weight.dim() == 2:
                    weight.normal_(0.0, 0.2)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
