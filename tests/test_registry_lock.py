"""registry_lock: two processes deciding on the same model's registry entry take turns.

The Prefect-server variant runs in tests/test_services.py, against a real server.
"""

from __future__ import annotations

import os
import subprocess
import sys

HOLD = """
import sys, time
from transferflow.registry_lock import registry_lock
with registry_lock("lock-test", sys.argv[1]):
    start = time.time()
    time.sleep(1.5)
    print(start, time.time())
"""


def held_intervals(tracking_uri: str, env: dict | None = None) -> list[tuple[float, float]]:
    """Two processes that each hold the lock for 1.5 s, started together: their (start, end) in the lock."""
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, tracking_uri], stdout=subprocess.PIPE, text=True,
                              env=env or os.environ.copy()) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    return sorted(tuple(map(float, out.split()[-2:])) for out in outs)


def test_two_processes_take_turns_on_the_sqlite_store(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (_, first_end), (second_start, _) = held_intervals(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert second_start >= first_end
    assert (tmp_path / "mlflow.db.registry.lock").exists()
