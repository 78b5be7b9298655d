"""One registry decision at a time per model name, across the flows of a team.

register ("no champion yet? then this version") and promote (judge the challenger against the champion
of the moment, then move @champion) read the registry, decide, and write it. Two flows that interleave
those steps would both give @champion away, and write the same history tag. The workspace lock cannot
help: a team's flows run in other folders, on other machines. So the read-decide-write block holds:

- with a Prefect server (PREFECT_API_URL, from the environment or the Prefect profile: workers,
  `make services`), a slot of Prefect's global concurrency limit `transferflow-registry-<model name>`
  (limit 1), which every flow of the team shares;
- on the embedded defaults (no Prefect server: its ephemeral server lives inside one process), a file
  lock beside the SQLite tracking store, which is where every writer of that registry runs.

A remote MLflow server without a Prefect server is left unlocked: nothing both sides can reach offers a
lock (MLflow's REST API has no compare-and-set), which the README says.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from transferflow.errors import TransferflowError

WAIT_S = 1800
"""How long to wait for another flow's decision: promotion re-scores two models on the test split."""


class RegistryBusy(TransferflowError):
    """Another flow held the registry decision for longer than WAIT_S."""


def limit_name(model_name: str) -> str:
    return "transferflow-registry-" + re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)


@contextmanager
def registry_lock(model_name: str, tracking_uri: str) -> Iterator[None]:
    """Hold the decision lock on `model_name`'s registry entry for the block."""
    from prefect.settings import PREFECT_API_URL

    if os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value():  # the environment first: Prefect reads it once
        with _prefect_slot(limit_name(model_name)):
            yield
    elif tracking_uri.startswith("sqlite:///"):
        from filelock import FileLock, Timeout

        store = Path(tracking_uri.removeprefix("sqlite:///"))
        try:
            with FileLock(f"{store}.registry.lock", timeout=WAIT_S):
                yield
        except Timeout:
            raise RegistryBusy(f"another run held the registry lock {store}.registry.lock for {WAIT_S} s") from None
    else:
        yield


@contextmanager
def _prefect_slot(name: str) -> Iterator[None]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:  # two flows may create it at once: the loser finds it there
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                pass
    try:
        # strict: a limit that vanished must fail, not silently let every flow through
        with concurrency(name, occupy=1, timeout_seconds=WAIT_S, strict=True):
            yield
    except TimeoutError:
        raise RegistryBusy(f"another flow held Prefect's concurrency limit {name!r} for {WAIT_S} s") from None
