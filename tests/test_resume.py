"""A stage killed mid-training and re-run with the same params continues from its last checkpoint, and
ends with the figures of a run that was never stopped (one CPU machine, one seed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tasks import finetune, pretrain
from transferflow.config import load_params
from transferflow.files import read_json
from conftest import REPO, make_workspace

KILLED_AFTER_FIRST_CHECKPOINT = """
import os, runpy, signal, sys
from transformers import Trainer

save = Trainer._save_checkpoint
def save_then_die(self, *args, **kwargs):  # SIGKILL: no handler, no cleanup, as the OOM killer does it
    save(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
Trainer._save_checkpoint = save_then_die
stage = sys.argv[1]
sys.argv = [stage, *sys.argv[2:]]
runpy.run_module(stage, run_name="__main__")
"""


def run_killed(*args: str) -> None:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", KILLED_AFTER_FIRST_CHECKPOINT, *args],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == -9, out.stderr[-3000:]


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_a_killed_finetune_continues_and_ends_as_an_uninterrupted_one(in_pretrained):
    params = load_params("params.yaml")
    checkpoints = in_pretrained / "checkpoints/finetune/full"
    uninterrupted = finetune.main(params, "full")
    assert uninterrupted["resumed"] is False and not checkpoints.exists()  # a finished run keeps none

    run_killed("tasks.finetune", "full")
    assert (checkpoints / f"checkpoint-{params.finetune.eval_steps}" / "trainer_state.json").is_file()
    assert read_json(in_pretrained / "artifacts/finetune/full/summary.json") == uninterrupted  # nothing lost

    resumed = finetune.main(params, "full")
    assert resumed["resumed"] is True and resumed["steps"] == uninterrupted["steps"]
    assert resumed["validation"] == uninterrupted["validation"]
    assert not checkpoints.exists()


@pytest.mark.slow  # a long end-to-end run: `make test` (CI) runs it, a plain `pytest` does not
def test_a_killed_pretrain_continues_and_ends_as_an_uninterrupted_one(pretrained_workspace, tmp_path, monkeypatch):
    root = make_workspace(tmp_path / "ws")
    for stage in ("prepare", "tokenizer"):
        shutil.copytree(pretrained_workspace / "artifacts" / stage, root / "artifacts" / stage)
    monkeypatch.chdir(root)
    params = load_params("params.yaml")
    uninterrupted = pretrain.main(params)

    shutil.rmtree(root / "checkpoints/pretrain")  # pretrain keeps its last checkpoints: start this one afresh
    run_killed("tasks.pretrain")
    half_written = root / "checkpoints/pretrain/checkpoint-999999"  # as a kill during a save leaves it
    half_written.mkdir()
    resumed = pretrain.main(params)
    assert resumed["resumed"] is True and not half_written.exists()
    assert resumed["steps"] == uninterrupted["steps"]
    # Close, not bit-identical: on a mid-epoch resume Trainer collates the first batch before it restores
    # the RNG (transformers' _run_epoch, rng_to_sync), so that one batch gets other masks. Fine-tuning's
    # padding collator draws nothing, and its resume above is exact.
    assert abs(resumed["loss"] - uninterrupted["loss"]) < 1e-3 * uninterrupted["loss"]
    assert abs(resumed["token_accuracy"] - uninterrupted["token_accuracy"]) < 0.01
