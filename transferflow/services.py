"""A team's servers on one machine: PostgreSQL, an MLflow tracking server and a Prefect server on it.

    make services          # or: transferflow services start [--dir .services]
    make services-stop     # or: transferflow services stop

Everything binds to 127.0.0.1 and lives in one folder (default `.services/`): the database cluster,
MLflow's artifact store, a log file per server, and the pid files. Starting twice is harmless: what
already answers is left running. The last two lines printed are what to paste so that transferflow
(and the Prefect worker) use them:

    export MLFLOW_TRACKING_URI=http://127.0.0.1:5050
    export PREFECT_API_URL=http://127.0.0.1:4250/api

PostgreSQL comes from Debian's `postgresql` package (`apt-get install postgresql`): it is the server a
team runs in production, kept patched by the distribution; the pip-installable builds are one-person
projects. Its superuser has a generated password, kept in a 0600 pgpass file that both servers read
through PGPASSFILE (libpq and asyncpg honour it), so no password appears on a command line. Run as
root, the database runs as the `postgres` system user, since PostgreSQL refuses root.

The database starts and stops with pg_ctl; the two Python servers are started here, detached, and
stopped with their children. Nothing here is specific to transferflow's pipeline: the flow and the
stages only see MLFLOW_TRACKING_URI and PREFECT_API_URL.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from transferflow.errors import TransferflowError
from transferflow.schedule import SERVER_START_S, healthy, start_detached, stop_tree


class ServicesError(TransferflowError):
    """A server did not start or stop: PostgreSQL missing, a port taken, a server that died."""


@dataclass(frozen=True)
class Services:
    """Where the servers keep their state, and the ports they listen on (all on 127.0.0.1)."""

    root: Path
    postgres_port: int = 5433
    mlflow_port: int = 5050
    prefect_port: int = 4250

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def prefect_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    def database_uri(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.postgres_port}/{database}"

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def pgpass(self) -> Path:
        return self.root / "pgpass"

    def log(self, server: str) -> Path:
        return self.root / "logs" / f"{server}.log"

    def pid_file(self, server: str) -> Path:
        return self.root / f"{server}.pid"

    def exports(self) -> list[str]:
        return [f"export MLFLOW_TRACKING_URI={self.mlflow_url}", f"export PREFECT_API_URL={self.prefect_url}"]


def start(s: Services, echo=print) -> None:
    """Start what is not running yet, in order: PostgreSQL, then MLflow and Prefect on it."""
    s.root.mkdir(parents=True, exist_ok=True)
    (s.root / "logs").mkdir(exist_ok=True)
    _start_postgres(s, echo)
    for database in ("mlflow", "prefect"):
        _create_database(s, database)
    env = os.environ | {"PGPASSFILE": str(s.pgpass.resolve())}
    env.pop("PREFECT_API_URL", None)  # the server itself must not try to reach another one
    env.pop("MLFLOW_TRACKING_URI", None)
    artifacts = (s.root / "mlflow-artifacts").resolve()
    _start_server(s, "mlflow", s.mlflow_url, env, [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(s.mlflow_port),
        "--backend-store-uri", s.database_uri("mlflow"),
        # served through the tracking server (mlflow-artifacts:/), so clients on other machines can log
        "--artifacts-destination", str(artifacts), "--workers", "1"], echo)
    prefect_env = env | {
        "PREFECT_API_DATABASE_CONNECTION_URL": s.database_uri("prefect", "postgresql+asyncpg"),
        "PREFECT_HOME": str((s.root / "prefect-home").resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    _start_server(s, "prefect", s.prefect_url, prefect_env, [
        sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
        str(s.prefect_port)], echo)


def stop(s: Services, echo=print) -> None:
    """Stop the Python servers, then the database; what is not running is skipped."""
    for server in ("prefect", "mlflow"):
        pid = _live_pid(s.pid_file(server))
        if pid:
            stop_tree(psutil.Process(pid))
            echo(f"{server}: stopped (pid {pid})")
        s.pid_file(server).unlink(missing_ok=True)
    if _postgres_running(s):
        _pg("pg_ctl", "stop", "-D", str(s.pgdata), "-m", "fast", "-w")
        echo("postgres: stopped")


def status(s: Services) -> dict[str, bool]:
    return {"postgres": _postgres_running(s), "mlflow": healthy(s.mlflow_url), "prefect": healthy(s.prefect_url)}


def _postgres_bin(tool: str) -> str:
    """A PostgreSQL server program: on PATH, or in Debian's versioned folder (not on PATH there)."""
    found = shutil.which(tool) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)),
                                       None)
    if not found:
        raise ServicesError(f"PostgreSQL's {tool} not found: install the server (Debian: apt-get install postgresql)")
    return found


def _as_root() -> bool:
    return os.geteuid() == 0


def _pg_command(tool: str, *args: str) -> list[str]:
    """A PostgreSQL server program's command line, run as the `postgres` user when we are root (it refuses root)."""
    command = [_postgres_bin(tool), *args]
    return ["runuser", "-u", "postgres", "--", *command] if _as_root() else command


def _pg(tool: str, *args: str, log: Path | None = None) -> subprocess.CompletedProcess:
    """Run a PostgreSQL server program; a failure raises with its message and the log's tail."""
    done = subprocess.run(_pg_command(tool, *args), capture_output=True, text=True)
    if done.returncode:
        tail = log.read_text(errors="replace")[-1500:] if log and log.is_file() else ""
        raise ServicesError(f"{tool} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}\n{tail}")
    return done


def _postgres_running(s: Services) -> bool:
    if not (s.pgdata / "PG_VERSION").is_file():
        return False
    return subprocess.run(_pg_command("pg_ctl", "status", "-D", str(s.pgdata)), capture_output=True).returncode == 0


def _start_postgres(s: Services, echo) -> None:
    if not (s.pgdata / "PG_VERSION").is_file():
        _init_cluster(s)
    if _postgres_running(s):
        echo(f"postgres: already running on 127.0.0.1:{s.postgres_port}")
        return
    log = s.log("postgres")
    log.touch()
    if _as_root():
        shutil.chown(log, "postgres")
    # TCP on loopback only, no Unix socket (its default folder may not exist or be writable here)
    options = f"-c listen_addresses=127.0.0.1 -c port={s.postgres_port} -c unix_socket_directories=''"
    _pg("pg_ctl", "start", "-D", str(s.pgdata), "-l", str(log.resolve()), "-o", options, "-w", "-t",
        str(SERVER_START_S), log=log)
    echo(f"postgres: started on 127.0.0.1:{s.postgres_port} (data {s.pgdata})")


def _init_cluster(s: Services) -> None:
    """A new cluster whose superuser has a generated password, written to a pgpass file (mode 0600)."""
    password = secrets.token_urlsafe(24)
    s.pgdata.mkdir(parents=True, exist_ok=True)
    pwfile = s.root / "initdb.pw"
    _write_private(pwfile, password + "\n")
    _write_private(s.pgpass, f"127.0.0.1:{s.postgres_port}:*:postgres:{password}\n")
    if _as_root():
        _check_postgres_reaches(s.root)
        # initdb runs as postgres: it must own the data folder and read the password file
        shutil.chown(s.pgdata, "postgres", "postgres")
        shutil.chown(pwfile, "postgres")
    try:
        _pg("initdb", "-D", str(s.pgdata.resolve()), "-U", "postgres", "--pwfile", str(pwfile.resolve()),
            "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions")
    finally:
        pwfile.unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    """Write a secret readable by its owner alone from the first byte (not chmod after the write)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)


def _check_postgres_reaches(folder: Path) -> None:
    """The `postgres` user must be able to pass through every folder above its data: under a root-only
    home (mode 0700) initdb would fail later with a bare "Permission denied"."""
    if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(folder.resolve())]).returncode:
        raise ServicesError(f"PostgreSQL runs as the `postgres` user, which cannot reach {folder.resolve()}: "
                            "choose a --dir under a folder it may enter (e.g. /srv), or let it pass (chmod o+x)")


def _create_database(s: Services, name: str) -> None:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=s.postgres_port, user="postgres", dbname="postgres",
                                  passfile=str(s.pgpass))
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def _live_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def _start_server(s: Services, name: str, url: str, env: dict, command: list[str], echo) -> None:
    if healthy(url):
        echo(f"{name}: already running at {url}")
        return
    if pid := _live_pid(s.pid_file(name)):
        raise ServicesError(f"{name} (pid {pid}) is running but {url}/health does not answer: "
                            f"see {s.log(name)}, or `transferflow services stop`")
    proc = start_detached(command, url, s.log(name), env, what=name, error=ServicesError, cwd=s.root)
    s.pid_file(name).write_text(str(proc.pid))
    echo(f"{name}: started at {url} (log {s.log(name)})")
