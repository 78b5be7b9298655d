"""Stage outputs on disk: written so that a failed stage leaves nothing half-written for a later stage
to read, read back, and fingerprinted for cache keys. Every stage uses this module; none of it changes
what a stage computes (tests/test_dag_sync.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from transferflow.errors import DataError  # noqa: F401 (raised here; callers import it from here too)


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty scratch folder beside `target`; on success it replaces `target` in one rename.

    On failure the scratch folder is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield scratch
    except OSError as err:
        shutil.rmtree(scratch, ignore_errors=True)
        if err.filename is None and err.errno is not None:  # a write() on a full disk names no file
            raise OSError(err.errno, err.strerror, str(target)) from err
        raise
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(scratch, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(scratch, target)


def write_json(path: str | Path, data) -> None:
    """Write JSON atomically (temp file + rename), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically (temp file + rename), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def save_prepared(splits, folder: str | Path) -> None:
    """`splits.save_to_disk(folder)` (a datasets.DatasetDict), byte-identical for the same rows.

    datasets gives a table built in memory a random fingerprint (an unseeded `random.Random` in
    datasets.fingerprint), and save_to_disk writes it into each split's state.json: the same rows
    would hash differently on every run, so DVC and the stage cache keys would see a new output and
    re-run everything downstream. Each split is saved under a hash of its Arrow table instead.
    """
    import datasets
    import pyarrow as pa

    fixed = {}
    for name, split in splits.items():
        flat = split.flatten_indices(keep_in_memory=True)  # the rows a select() kept, in order
        rows = flat.data.table.replace_schema_metadata(None)  # the metadata carries the random fingerprint
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            writer.write_table(rows)
        fixed[name] = datasets.Dataset(flat.data, info=flat.info, split=flat.split,
                                       fingerprint=hashlib.sha256(sink.getvalue()).hexdigest()[:16])
    datasets.DatasetDict(fixed).save_to_disk(str(folder))


def load_prepared(folder: str | Path):
    """A split written by the prepare stage (a datasets.DatasetDict), read into memory.

    In memory so that `.map()` writes no cache files into the folder: that folder is a DVC output
    and a cache-key input, and must stay byte-identical once written.
    """
    import datasets  # slow to import, and only stages that read splits need it

    if not Path(folder).is_dir():
        raise DataError(f"{folder} is missing: run the prepare stage first (`dvc repro prepare`)")
    return datasets.load_from_disk(str(folder), keep_in_memory=True)


def fingerprint(paths: list[str | Path]) -> str:
    """Content hash of files and folders (names and bytes), for cache keys.

    Hand-written because DVC's hashing is an internal API; this is the same idea in a few lines.
    """
    digest = hashlib.sha256()
    for root in sorted(str(p) for p in paths):
        root_path = Path(root)
        files = sorted(root_path.rglob("*")) if root_path.is_dir() else [root_path]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                digest.update(str(f).encode())
                with open(f, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
            elif not f.exists():
                digest.update(f"missing:{f}".encode())
    return digest.hexdigest()
