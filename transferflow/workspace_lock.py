"""One pipeline at a time per workspace: `transferflow run`, a scheduled flow run and `transferflow repro`
take `.transferflow.lock` first.

Two runs in one folder would write the same artifacts/ and checkpoints/, and on the SQLite default the
same mlflow.db; the second fails at once, naming who holds the lock, rather than racing the first. The
lock is an OS file lock (filelock: flock on POSIX), so a run killed with SIGKILL frees it with its
process, and no stale lock needs cleaning by hand.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from transferflow.errors import TransferflowError

LOCK = Path(".transferflow.lock")
HOLDER = Path(".transferflow.lock.holder")  # beside the lock: filelock truncates the lock file itself

_held: set[Path] = set()
"""Locks this process holds: the flow takes the lock `transferflow run` already took, and must not wait on it."""


class WorkspaceBusy(TransferflowError):
    """Another run of the pipeline is going on in this workspace."""


@contextmanager
def workspace_lock():
    """Hold this workspace's lock for the block, or raise WorkspaceBusy naming its holder."""
    path = LOCK.resolve()
    if path in _held:
        yield
        return
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = HOLDER.read_text().strip() if HOLDER.is_file() else "a process of this machine"
        raise WorkspaceBusy(f"another run holds {LOCK} in {Path.cwd()} ({holder}): wait for it to end, "
                            "or run in another folder") from None
    _held.add(path)
    try:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        HOLDER.write_text(f"pid {os.getpid()} on {socket.gethostname()}, `{command}`, since "
                          f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}\n")
        yield
    finally:
        _held.discard(path)
        lock.release()
