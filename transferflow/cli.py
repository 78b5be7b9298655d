"""The `transferflow` command: what a user types.

    transferflow run [--params params.yaml]   the pipeline as a Prefect flow (local ephemeral server)
    transferflow repro                        `dvc repro` with every stage under one MLflow parent run
    transferflow leaderboard                  the last evaluation, sorted by validation score
    transferflow models                       the registry: versions, aliases, tags
    transferflow strategies                   registered fine-tuning strategies and their options
    transferflow check-params [FILE]          validate a params file against the schema
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@app.command()
def run(params: Path = typer.Option(Path("params.yaml"), "--params", "-p", help="params file")) -> None:
    """Run the whole pipeline as a Prefect flow and print the leaderboard and the registry state."""
    from transferflow.config import ParamsError, load_params
    from transferflow.data import DataError
    from transferflow.tracking import TrackingUnavailable, setup_tracking

    try:  # cheap checks first: a bad params file or a down server should not cost a Prefect start-up
        load_params(params)
        setup_tracking()
    except (ParamsError, TrackingUnavailable) as err:
        _fail(str(err))
    from flows.pipeline import pipeline

    try:
        result = pipeline(params_file=str(params))
    except (DataError, TrackingUnavailable, ParamsError) as err:
        _fail(str(err))
    _print_leaderboard(LEADERBOARD)
    _print_models(load_params(params).register.model_name)
    if result["cached"]:
        typer.echo(f"\nunchanged inputs: reused cached {', '.join(result['cached'])}")


@app.command()
def repro(args: list[str] = typer.Argument(None, help="extra arguments for dvc repro")) -> None:
    """`dvc repro` with all stages logged under one MLflow parent run."""
    from transferflow.tracking import pipeline_run

    with pipeline_run("dvc-repro", tags={"transferflow.runner": "dvc"}):
        code = subprocess.call(["dvc", "repro", *(args or [])], env=os.environ.copy())
        if code:
            raise typer.Exit(code)


LEADERBOARD = Path("artifacts/evaluate/leaderboard.md")


@app.command()
def leaderboard(path: Path = typer.Option(LEADERBOARD, help="leaderboard file")) -> None:
    """Print the last evaluation's leaderboard."""
    _print_leaderboard(path)


def _print_leaderboard(path: Path) -> None:
    if not path.is_file():
        _fail(f"{path} not found: run `transferflow run` or `dvc repro` first")
    typer.echo(f"\nLeaderboard (sorted by validation score; test is reported, never used to choose):\n")
    typer.echo(path.read_text())


@app.command()
def models(name: str = typer.Option(None, help="registered model name (default: register.model_name)"),
           params: Path = typer.Option(Path("params.yaml"), "--params", "-p")) -> None:
    """Print the registered model's versions with their aliases and tags."""
    from transferflow.config import load_params

    _print_models(name or load_params(params).register.model_name)


def _print_models(name: str) -> None:
    from mlflow.tracking import MlflowClient

    from transferflow.tracking import setup_tracking

    setup_tracking()
    client = MlflowClient()
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    if not versions:
        typer.echo(f"no versions of {name!r} in the registry at {client.tracking_uri}")
        return
    held: dict[int, list[str]] = {}
    for alias, ver in client.get_registered_model(name).aliases.items():
        held.setdefault(int(ver), []).append(f"@{alias}")
    typer.echo(f"\nRegistry {client.tracking_uri}, model {name!r}:")
    for v in versions:
        tags = ", ".join(f"{k}={val}" for k, val in sorted(v.tags.items()))
        typer.echo(f"  v{v.version:<3} {' '.join(held.get(int(v.version), [])):<24} {tags}")


@app.command()
def strategies() -> None:
    """List the registered fine-tuning strategies with their options."""
    from tasks.strategies import STRATEGIES

    for s in STRATEGIES.values():
        fields = ", ".join(f"{k}={f.default!r}" for k, f in s.Options.model_fields.items())
        typer.echo(f"{s.name:<14} [{s.init}] {s.summary}\n{'':<15}options: {fields}")


@app.command("check-params")
def check_params(path: Path = typer.Argument(Path("params.yaml")),
                 schema: bool = typer.Option(False, help="print the JSON schema instead")) -> None:
    """Validate a params file (every error names its key), or print the schema."""
    from transferflow.config import Params, ParamsError, load_params

    if schema:
        typer.echo(json.dumps(Params.model_json_schema(), indent=2))
        return
    try:
        load_params(path)
    except ParamsError as err:
        _fail(str(err))
    typer.echo(f"{path}: ok")


if __name__ == "__main__":
    sys.exit(app())
