"""Data-parallel pretraining trains the model one process trains: two processes (torchrun, DDP over
gloo on the CPU) with half the batch each give the loss curve of one process with the whole batch, and
only rank 0 writes the stage's outputs and logs to MLflow.

Compared on the gpt family: causal LM draws nothing at random and predicts the same number of tokens
in every packed block, so both runs compute the same losses on the same data (DDP shards one seeded
shuffle). The masked families draw their masks from each process's own random stream, and bert averages
its loss per process, so their curves agree in distribution only, not to float tolerance.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from tasks import pretrain, tokenizer
from transferflow.config import load_params
from transferflow.files import read_json
from tests.conftest import REPO, make_workspace
from tests.helpers import set_params

BATCH, STEPS = 8, 10
EXPERIMENT = "distributed-pretrain"


def gpt_smoke(batch_size: int) -> dict:
    """Smoke params on the gpt family (its strategies too), in fp32: bf16 would round both runs apart."""
    return dict(pretrain={"family": "gpt", "precision": "fp32", "max_steps": STEPS, "eval_steps": STEPS // 2,
                          "batch_size": batch_size},
                finetune={"strategies": ["prompt"]}, data_efficiency={"strategies": ["prompt"]})


def launch_two_processes(root) -> subprocess.Popen:
    """`torchrun --standalone` (a free port: others may run tests on this machine) of the pretrain stage."""
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MLFLOW_EXPERIMENT_NAME": EXPERIMENT}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "tasks.pretrain"], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_two_processes_with_half_the_batch_train_as_one_with_all_of_it(pretrained_workspace, workspace, tmp_path):
    set_params(workspace / "params.yaml", **gpt_smoke(BATCH))
    params = load_params("params.yaml")
    # The session's smoke corpus (gpt_smoke leaves the prepare params as they are), then gpt's tokenizer
    shutil.copytree(pretrained_workspace / "artifacts/prepare", workspace / "artifacts/prepare")
    tokenizer.main(params)
    twin = make_workspace(tmp_path / "ddp")
    for stage in ("prepare", "tokenizer"):
        shutil.copytree(workspace / "artifacts" / stage, twin / "artifacts" / stage)
    set_params(twin / "params.yaml", **gpt_smoke(BATCH // 2))

    launch = launch_two_processes(twin)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the launched processes: three share this machine's cores meanwhile
    try:
        single = pretrain.main(params)
    finally:
        torch.set_num_threads(threads)
    log, _ = launch.communicate(timeout=600)
    assert launch.returncode == 0, log[-3000:]

    one, two = read_json(workspace / "plots/pretrain.json"), read_json(twin / "plots/pretrain.json")
    assert [e["step"] for e in two] == [e["step"] for e in one] == list(range(1, STEPS + 1))
    assert [e["loss"] for e in two] == pytest.approx([e["loss"] for e in one], abs=1e-4)
    distributed = read_json(twin / "metrics/pretrain.json")
    assert distributed["loss"] == pytest.approx(single["loss"], abs=1e-4)  # the same weights at the end

    # Rank 0 alone wrote: one model folder and no scratch folder of another writer beside it ...
    assert sorted(p.name for p in (twin / "artifacts").iterdir()) == ["prepare", "pretrain", "tokenizer"]
    assert sorted(p.name for p in (twin / "checkpoints").iterdir()) == ["pretrain", "pretrain-previous"]
    # ... and logged: one run, with one loss point per step (and the held-out loss, at step 0, at the end)
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert [(r.data.tags["transferflow.stage"], r.info.status) for r in runs] == [("pretrain", "FINISHED")]
    steps = sorted(m.step for m in client.get_metric_history(runs[0].info.run_id, "loss"))
    assert steps == list(range(STEPS + 1))
