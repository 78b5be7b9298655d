"""Where pretraining starts: pretrain.init_from resolved to a checkpoint, and the workspace's last one.

`init_from: previous` continues from the model the last successful pretrain stage of this workspace
wrote, kept in PREVIOUS (outside artifacts/, which DVC clears before a stage runs). A nightly schedule
then accumulates pretraining run after run; the first run, with nothing kept yet, starts from random
weights.
"""

from __future__ import annotations

from pathlib import Path

PREVIOUS = Path("checkpoints/pretrain-previous")
"""A copy of the last pretrained model (and tokenizer) this workspace's pretrain stage finished."""


def starting_checkpoint(init_from: str | None) -> str | None:
    """The checkpoint to load (a folder or a hub id), or None for random weights."""
    if init_from == "previous":
        return str(PREVIOUS) if (PREVIOUS / "config.json").is_file() else None
    return init_from


def checkpoint_inputs(params) -> list[str]:
    """The local checkpoint folder a stage reads, for the flow's cache key (a hub id is no path)."""
    start = starting_checkpoint(params.pretrain.init_from)
    return [start] if start and Path(start).is_dir() else []
