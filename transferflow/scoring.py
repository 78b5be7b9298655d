"""Scoring with the registered champion: over HTTP (MLflow's scoring server) or a file in batch.

    transferflow serve [--port 5000]           # POST {"inputs": ["a gripping film"]} to /invocations
    transferflow predict reviews.txt -o out.csv

The server is MLflow's own (`mlflow models serve`), run in this environment (`--env-manager local`,
no network needed), bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transferflow.errors import RegistryError

TEXT_COLUMNS = ("text", "sentence")
"""Columns read from a .csv/.tsv file, first match wins; other files hold one text per line."""


def model_uri(name: str, alias: str = "champion") -> str:
    return f"models:/{name}@{alias}"


def serve_env() -> dict[str, str]:
    """The environment for the scoring server: MLflow starts `uvicorn` by name, so this interpreter's
    bin folder (the venv's) goes first on PATH even when the venv is not activated."""
    bin_dir = str(Path(sys.executable).parent)
    return os.environ | {"PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}


def serve_command(uri: str, host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--host", host, "--port", str(port),
            "--workers", str(workers), "--env-manager", "local"]


@contextmanager
def running_server(name: str, log_file: Path, alias: str = "champion", start_s: float = 180) -> Iterator[str]:
    """`transferflow serve` for `models:/<name>@<alias>` on a free port of 127.0.0.1, as a child
    process: yields its URL once /ping answers, and stops it (and the workers it started) on exit."""
    from transferflow.errors import TransferflowError
    from transferflow.schedule import free_port, stop_tree

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_file, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "transferflow.cli", "serve", "--name", name,
                                   "--alias", alias, "--port", str(port)], env=serve_env(),
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + start_s
            while not _answers(url):
                if server.poll() is not None:
                    tail = Path(log_file).read_text(errors="replace")[-2000:]
                    raise TransferflowError(f"the scoring server exited with code {server.returncode}:\n{tail}")
                if time.monotonic() > deadline:
                    raise TransferflowError(f"the scoring server did not answer within {start_s:.0f} s "
                                            f"(its log: {log_file})")
                time.sleep(0.5)
            yield url
        finally:
            stop_tree(server)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/ping", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def read_texts(path: Path) -> list[str]:
    """Texts from a .csv/.tsv with a `text` or `sentence` column, or one per line from any other file."""
    from transferflow.data import read_text_file

    text = read_text_file(path)
    if path.suffix in (".csv", ".tsv"):
        rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix == ".tsv" else ",",
                                   quoting=csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL))
        column = next((c for c in TEXT_COLUMNS if rows and c in rows[0]), None)
        if column is None:
            raise ValueError(f"{path} has no column named {' or '.join(TEXT_COLUMNS)}")
        return [r[column] for r in rows]
    return [line for line in text.splitlines() if line.strip()]


def predict_texts(uri: str, texts: list[str]) -> list[str]:
    """Label names for texts, from the model in-process (the same answers the server gives); a ner
    model's entity spans per text come as JSON."""
    import json

    return [a if isinstance(a, str) else json.dumps(a) for a in load_served(uri).predict(texts)]


def load_served(uri: str):
    """The pyfunc model at `uri`, or one RegistryError line when its files cannot be loaded (deleted,
    truncated or edited in the artifact store): the server and `predict` fail before serving anything."""
    import mlflow.pyfunc

    try:
        return mlflow.pyfunc.load_model(uri)
    except Exception as err:  # noqa: BLE001 (whatever broke in the files, the user needs the same advice)
        detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        raise RegistryError(f"{uri} cannot be loaded ({type(err).__name__}: {detail}); its files in the "
                            "artifact store are damaged or incomplete (`transferflow rollback` gives "
                            "@champion back to the previous version)") from err


def write_predictions(texts: list[str], labels: list[str], out) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(zip(texts, labels))
