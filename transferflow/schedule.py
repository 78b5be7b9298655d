"""Scheduled retraining: the training flow as a Prefect deployment with a schedule, served from here.

    transferflow schedule --cron "0 3 * * *"     # every night at 03:00 (server time zone: UTC)
    transferflow schedule --interval 3600        # every hour

Prefect's ephemeral server cannot run schedules, so unless PREFECT_API_URL names a server (a team's,
or one you started), this starts a local one on 127.0.0.1 with Prefect's embedded SQLite database
under PREFECT_HOME, or reuses one already answering on that port, and stops it on exit (Ctrl-C).
Runs happen here, in this working directory, one at a time; a run whose data and params are unchanged
reuses every cached stage and only re-checks the promotion gate.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import httpx
import psutil

from transferflow.errors import TransferflowError

if TYPE_CHECKING:  # only the annotation names it
    from prefect import Flow

SERVER_START_S = 180
"""How long to wait for a fresh server to answer (it migrates its database on first start)."""


class ScheduleError(TransferflowError):
    """No Prefect server to schedule on: the configured one is down, or a local one did not start."""


def healthy(api_url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_tree(proc: subprocess.Popen | psutil.Process, grace_s: float = 20) -> None:
    """Stop a process and every process it started (SIGTERM, then SIGKILL after `grace_s`)."""
    try:
        root = psutil.Process(proc.pid)
        family = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for p in family:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def start_detached(command: list[str], url: str, log_file: Path, env: dict, what: str,
                   error: type[TransferflowError], cwd: Path | None = None) -> subprocess.Popen:
    """Start a server in a session of its own (Ctrl-C here does not reach it), its output appended to
    `log_file`, and wait until `url`/health answers. One that exits first, or takes longer than
    SERVER_START_S, is stopped and raised as `error` with its log's tail."""
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
    deadline = time.monotonic() + SERVER_START_S
    while not healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_tree(proc)
            tail = log_file.read_text(errors="replace")[-2000:]
            raise error(f"{what} did not start at {url} (log {log_file}):\n{tail}")
        time.sleep(1)
    return proc


def configured_api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active Prefect profile."""
    from prefect.settings import PREFECT_API_URL

    # The environment first: Prefect reads its settings once, at import.
    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value() or None


@contextmanager
def prefect_server(port: int = 4200, log_file: Path | None = None) -> Iterator[str]:
    """The API URL of a Prefect server: the configured one, one already on 127.0.0.1:`port`, or a new one.

    A server this function starts is stopped (with its children) when the block ends.
    """
    configured = configured_api_url()
    if configured:
        if not healthy(configured):
            raise ScheduleError(f"the Prefect server at PREFECT_API_URL={configured} does not answer; start it "
                                "or unset PREFECT_API_URL to use a local one")
        yield configured
        return
    url = f"http://127.0.0.1:{port}/api"
    if healthy(url):
        with _api_url(url):
            yield url
        return
    from prefect.settings import PREFECT_HOME

    log_file = log_file or Path(PREFECT_HOME.value()) / "transferflow-server.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy()
    env.pop("PREFECT_API_URL", None)  # the server itself must not try to reach another one
    proc = start_detached([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                           str(port)], url, log_file, env, what="the local Prefect server", error=ScheduleError)
    try:
        with _api_url(url):
            yield url
    finally:
        stop_tree(proc)


@contextmanager
def _api_url(url: str) -> Iterator[None]:
    """Point this process, and the flow-run processes it starts, at `url`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def serve_training(pipeline: Flow, params_file: str, cron: str | None = None, interval: float | None = None,
                   name: str = "scheduled") -> None:
    """Deploy the training flow `pipeline` (flows.pipeline's, handed down by the CLI: this module sits
    below the flows) with the schedule and run its scheduled runs until interrupted."""
    from prefect.types.entrypoint import EntrypointType

    # `kill` should stop the runner (and the server around it) as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    pipeline.serve(
        name=name, cron=cron, interval=interval, parameters={"params_file": params_file},
        description=f"transferflow training on {params_file}, run from {Path.cwd()}",
        tags=["transferflow"],
        limit=1,  # a run that overruns its slot delays the next one instead of racing it on the same files
        entrypoint_type=EntrypointType.MODULE_PATH,  # flow runs import flows.pipeline, wherever cwd is
    )
