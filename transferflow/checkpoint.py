"""Where pretraining starts: pretrain.init_from resolved to a checkpoint, and the workspace's last one.

`init_from: previous` continues from the model the last successful pretrain stage of this workspace
wrote, kept in PREVIOUS (outside artifacts/, which DVC clears before a stage runs). A nightly schedule
then accumulates pretraining run after run; the first run, with nothing kept yet, starts from random
weights.
"""

from __future__ import annotations

from pathlib import Path

from transferflow.errors import ParamsError

PREVIOUS = Path("checkpoints/pretrain-previous")
"""A copy of the last pretrained model (and tokenizer) this workspace's pretrain stage finished."""


def starting_checkpoint(init_from: str | None) -> str | None:
    """The checkpoint to load (a folder or a hub id), or None for random weights. A value that names a
    local path must be a checkpoint folder: transformers would read it as a hub id and answer with a
    network error."""
    if init_from == "previous":
        return str(PREVIOUS) if (PREVIOUS / "config.json").is_file() else None
    if init_from is None:
        return None
    path = Path(init_from).expanduser()
    local = init_from.startswith(("/", ".", "~")) or path.exists() or (len(path.parts) > 1 and Path(path.parts[0]).is_dir())
    if local and not (path / "config.json").is_file():
        raise ParamsError(f"pretrain.init_from {init_from}: no transformers checkpoint there "
                          "(a folder holding config.json, the model's weights and its tokenizer)")
    return str(path) if local else init_from


def load_from_checkpoint(load, init_from: str, **kwargs):
    """`load(init_from)` (a from_pretrained), with a hub id that cannot be fetched as one clear error."""
    try:
        return load(init_from, **kwargs)
    except OSError as err:
        raise ParamsError(f"pretrain.init_from {init_from}: cannot load it ({str(err).splitlines()[0]}); "
                          "offline, name a local checkpoint folder") from err


def checkpoint_inputs(params) -> list[str]:
    """The local checkpoint folder a stage reads, for the flow's cache key (a hub id is no path; a bad
    value is left for the stage to report)."""
    try:
        start = starting_checkpoint(params.pretrain.init_from)
    except ParamsError:
        return []
    return [start] if start and Path(start).is_dir() else []
