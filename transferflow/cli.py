"""The `transferflow` command: what a user types.

    transferflow run [--params params.yaml]   the pipeline as a Prefect flow (local ephemeral server);
                     [--data-efficiency]      also retrain strategies on 1%, 10%, 100% of the labels
                     [--profile NAME]         composing params.yaml from conf/ with that profile first
    transferflow profile [NAME]               compose params.yaml from conf/ (no NAME: list the profiles)
    transferflow repro                        `dvc repro` with every stage under one MLflow parent run
    transferflow leaderboard                  the last evaluation, sorted by validation score
    transferflow models                       the registry: versions, aliases, tags, champion history
    transferflow promote                      gate @challenger against @champion; promote if it passes
    transferflow rollback                     give @champion back to the previous champion
    transferflow schedule --cron "0 3 * * *"  retrain on a schedule (local Prefect server unless configured)
    transferflow deploy [--cron ...]          the training flow as a work-pool deployment, for workers
    transferflow services start|stop|status   PostgreSQL + MLflow + Prefect servers on 127.0.0.1 (a team's setup)
    transferflow serve [--port 5000]          serve @champion over HTTP (MLflow scoring server, /invocations)
    transferflow predict FILE                 score a file of texts with @champion
    transferflow strategies                   registered fine-tuning strategies and their options
    transferflow check-params [FILE]          validate a params file against the schema
    transferflow dvc-yaml [--check]           regenerate dvc.yaml from the stage declarations

An error a user can cause (params, data, a server that is down, a disk that is full or read-only) ends
in one `error:` line and exit code 2 (bad params or usage) or 1; `transferflow --verbose ...` also
prints its traceback and Prefect's failure logs.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import typer

from transferflow.errors import TransferflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


VERBOSE = False
"""--verbose: tracebacks and Prefect's failure logs too, not only the one `error:` line."""


class _FailureLogs(logging.Filter):
    """Prefect logs a failing task or flow with its traceback, then its Failed state, at each level it
    passes through; the CLI reports the same error once, as one line. Without --verbose those records
    are dropped (the rest of Prefect's log, retries included, stays). An unexpected error (a bug)
    still ends in Python's traceback, since the CLI does not catch it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.exc_info and not record.getMessage().startswith("Finished in state Failed")


_FAILURE_LOGS = _FailureLogs()


@app.callback()
def _options(verbose: bool = typer.Option(False, "--verbose", "-v",
                                          help="on an error, print its traceback and Prefect's failure logs")) -> None:
    global VERBOSE
    VERBOSE = verbose
    # The local ephemeral server's first start migrates its database; on 2 busy cores that can take
    # longer than Prefect's 20 s default (seen in the test suite). Read when prefect is first imported.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    for name in ("prefect.flow_runs", "prefect.task_runs"):  # one filter object: adding it twice is a no-op
        (logging.getLogger(name).removeFilter if verbose else logging.getLogger(name).addFilter)(_FAILURE_LOGS)


def _fail(problem: str | Exception, code: int = 1) -> None:
    """One `error:` line and the exit code: the error's own (2 for bad params, a usage error), else 1."""
    if VERBOSE and isinstance(problem, BaseException):
        import traceback

        traceback.print_exception(problem)
    if isinstance(problem, OSError) and not isinstance(problem, ConnectionError):
        problem = _os_problem(problem)
    # On a terminal a progress bar may have been cut off mid-line: return to its start and clear it
    start = "\r\033[K" if sys.stderr.isatty() else ""
    typer.secho(f"{start}error: {problem}", fg=typer.colors.RED, err=True)
    raise typer.Exit(getattr(problem, "exit_code", code))


def _os_problem(err: OSError) -> str:
    """A full disk or a read-only folder, in words, naming the path: `OSError.__str__` leads with its errno."""
    hint = {errno.ENOSPC: ": free some space, or point artifacts/ at a bigger disk",
            errno.EROFS: ": the workspace must be writable"}.get(err.errno, "")
    return f"{err.strerror or err}: {err.filename or 'writing under the workspace'}{hint}"


USER_ERRORS = (TransferflowError, OSError)
"""What the commands turn into one line: transferflow's own errors, and the file system's (a full disk,
a read-only folder) that any stage may hit."""


PROFILE_HELP = "compose the params file from conf/ with this profile first (conf/profile/NAME.yaml)"
SET_HELP = "a Hydra override applied while composing, e.g. finetune.max_steps=50 (repeatable)"


@app.command()
def run(params: Path = typer.Option(Path("params.yaml"), "--params", "-p", help="params file"),
        profile: str = typer.Option(None, help=PROFILE_HELP),
        set_: list[str] = typer.Option(None, "--set", "-S", help=f"{SET_HELP}; without --profile, over the demo"),
        data_efficiency: bool = typer.Option(False, "--data-efficiency",
                                             help="also retrain strategies on fractions of the labelled data")) -> None:
    """Run the whole pipeline as a Prefect flow and print the leaderboard and the registry state."""
    from transferflow.config import load_params
    from transferflow.tracking import setup_tracking
    from transferflow.workspace_lock import workspace_lock

    with ExitStack() as held:
        try:  # cheap checks first: a bad params file, a down server or a busy workspace cost no Prefect start-up
            if profile or set_:  # as `dvc exp run -S profile=...` does: params.yaml is what both then read
                from transferflow.profiles import write_params

                write_params(profile or "demo", params, set_)
            load_params(params)
            setup_tracking()
            held.enter_context(workspace_lock())
        except TransferflowError as err:
            _fail(err)
        from flows.pipeline import pipeline

        try:
            result = pipeline(params_file=str(params), data_efficiency=data_efficiency)
        except USER_ERRORS as err:
            _fail(err)
    _print_leaderboard(LEADERBOARD)
    _print_models(load_params(params).register.model_name)
    if result["data_efficiency"]:
        typer.echo(f"\nData efficiency (test accuracy by training fraction):\n\n{DATA_EFFICIENCY.read_text()}")
    if result["cached"]:
        typer.echo(f"\nunchanged inputs: reused cached {', '.join(result['cached'])}")


@app.command()
def repro(args: list[str] = typer.Argument(None, help="extra arguments for dvc repro")) -> None:
    """`dvc repro` with all stages logged under one MLflow parent run."""
    from transferflow.tracking import pipeline_run
    from transferflow.workspace_lock import workspace_lock

    with ExitStack() as held:
        try:
            held.enter_context(workspace_lock())
        except TransferflowError as err:
            _fail(err)
        with pipeline_run("dvc-repro", tags={"transferflow.runner": "dvc"}):
            code = subprocess.call(["dvc", "repro", *(args or [])], env=os.environ.copy())
    if code:
        raise typer.Exit(code)


LEADERBOARD = Path("artifacts/evaluate/leaderboard.md")
DATA_EFFICIENCY = Path("artifacts/data_efficiency/table.md")


@app.command()
def leaderboard(path: Path = typer.Option(LEADERBOARD, help="leaderboard file")) -> None:
    """Print the last evaluation's leaderboard."""
    _print_leaderboard(path)


def _print_leaderboard(path: Path) -> None:
    if not path.is_file():
        _fail(f"{path} not found: run `transferflow run` or `dvc repro` first")
    typer.echo("\nLeaderboard (sorted by validation score; test is reported, never used to choose):\n")
    typer.echo(path.read_text())


@app.command()
def models(name: str = typer.Option(None, help="registered model name (default: register.model_name)"),
           params: Path = typer.Option(Path("params.yaml"), "--params", "-p")) -> None:
    """Print the registered model's versions with their aliases and tags, and who held @champion when."""
    try:
        _print_models(_model_name(name, params))
    except TransferflowError as err:
        _fail(err)


def _model_name(name: str | None, params: Path) -> str:
    """--name, else register.model_name of the params file."""
    from transferflow.config import ParamsError, load_params

    try:
        return name or load_params(params).register.model_name
    except ParamsError as err:
        _fail(f"{err} (or pass --name)", err.exit_code)


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
    from transferflow.registry import history

    moves = history(client, name)
    if moves:
        typer.echo("\n@champion history (oldest first):")
    for m in moves:
        was = f" (was v{m['previous']})" if m.get("previous") else ""
        typer.echo(f"  {m['at']}  v{m['version']:<3} {m['action']:<9} by {m['by']}{was}: {m.get('reason', '')}")


@app.command()
def promote(params: Path = typer.Option(Path("params.yaml"), "--params", "-p", help="params file")) -> None:
    """Re-score the challenger (this workspace's registration, else @challenger) and @champion on the test
    split; promote only if every gate passes."""
    from mlflow.tracking import MlflowClient

    from tasks.promote import PromotionError, summary
    from transferflow.config import load_params
    from transferflow.registry import CHALLENGER, version_by_alias
    from transferflow.tracking import setup_tracking

    try:  # the usual failures are named here, before a Prefect start-up, and without a traceback
        name = load_params(params).register.model_name
        setup_tracking()
        if version_by_alias(MlflowClient(), name, CHALLENGER) is None:
            raise PromotionError(f"{name!r} has no @challenger: run the pipeline first (`transferflow run`)")
        from flows.promote import promote as promote_flow

        result = promote_flow(params_file=str(params))
    except TransferflowError as err:
        _fail(err)
    typer.echo(result.get("table") or "")
    typer.echo(summary(result))


@app.command()
def rollback(name: str = typer.Option(None, help="registered model name (default: register.model_name)"),
             params: Path = typer.Option(Path("params.yaml"), "--params", "-p"),
             reason: str = typer.Option("manual rollback", help="recorded in the champion history")) -> None:
    """Give @champion back to the previous champion; the history keeps the move."""
    from mlflow.tracking import MlflowClient

    from transferflow import registry
    from transferflow.tracking import setup_tracking

    model = _model_name(name, params)
    try:
        setup_tracking()
        entry = registry.rollback(MlflowClient(), model, reason=reason)
    except TransferflowError as err:
        _fail(err)
    was = entry["previous"]
    typer.echo(f"{model}: @champion v{was} -> v{entry['version']} (v{was} marked rolled back)")


@app.command()
def schedule(cron: str = typer.Option(None, help='cron schedule, e.g. "0 3 * * *" (UTC)'),
             interval: float = typer.Option(None, help="or: seconds between runs"),
             params: Path = typer.Option(Path("params.yaml"), "--params", "-p", help="params file"),
             port: int = typer.Option(4200, help="port of the local Prefect server (when PREFECT_API_URL is unset)"),
             name: str = typer.Option("scheduled", help="deployment name")) -> None:
    """Deploy the training flow on a schedule and run it until Ctrl-C (starts a local Prefect server if needed)."""
    from transferflow.config import load_params
    from transferflow.schedule import prefect_server, serve_training
    from transferflow.tracking import setup_tracking

    if (cron is None) == (interval is None):
        _fail("give exactly one of --cron or --interval")
    try:
        load_params(params)
        setup_tracking()
        with prefect_server(port) as url:
            typer.echo(f"Prefect API {url}; serving the training flow on {params} "
                       f"({'cron ' + cron if cron else f'every {interval:g} s'}); Ctrl-C stops")
            from flows.pipeline import pipeline

            serve_training(pipeline, str(params), cron=cron, interval=interval, name=name)
    except TransferflowError as err:
        _fail(err)
    except KeyboardInterrupt:
        typer.echo("stopped")


@app.command()
def deploy(pool: str = typer.Option("transferflow", help="process work pool (created if missing)"),
           name: str = typer.Option("nightly", help="deployment name"),
           cron: str = typer.Option(None, help='cron schedule, e.g. "0 3 * * *" (UTC); none: runs on demand'),
           interval: float = typer.Option(None, help="or: seconds between runs"),
           params: Path = typer.Option(Path("params.yaml"), "--params", "-p", help="params file")) -> None:
    """Deploy the training flow to a process work pool on PREFECT_API_URL; workers run it here."""
    from transferflow.config import load_params
    from transferflow.deployment import deploy_training

    if cron is not None and interval is not None:
        _fail("give at most one of --cron or --interval")
    try:
        load_params(params)
        from flows.pipeline import pipeline

        deploy_training(pipeline, str(params), pool=pool, name=name, cron=cron, interval=interval)
    except TransferflowError as err:
        _fail(err)
    when = f"cron {cron}" if cron else f"every {interval:g} s" if interval else "on demand"
    typer.echo(f"deployed transferflow-pipeline/{name} to work pool {pool!r} ({when}), working in {Path.cwd()}\n"
               f"start a worker:  prefect worker start --pool {pool} --limit 1\n"
               f"run it now:      prefect deployment run transferflow-pipeline/{name}")


services_app = typer.Typer(no_args_is_help=True, help="A team's servers on this machine, bound to 127.0.0.1.")
app.add_typer(services_app, name="services")


@services_app.callback()
def _services(ctx: typer.Context,
              root: Path = typer.Option(Path(".services"), "--dir", help="folder of the servers' data, logs, pids"),
              postgres_port: int = typer.Option(5433), mlflow_port: int = typer.Option(5050),
              prefect_port: int = typer.Option(4250)) -> None:
    from transferflow.services import Services

    ctx.obj = Services(root, postgres_port=postgres_port, mlflow_port=mlflow_port, prefect_port=prefect_port)


@services_app.command("start")
def services_start(ctx: typer.Context) -> None:
    """Start PostgreSQL, then MLflow and Prefect on it (what runs already is kept); print the exports."""
    from transferflow import services

    try:
        services.start(ctx.obj, echo=typer.echo)
    except TransferflowError as err:
        _fail(err)
    typer.echo("\n".join(ctx.obj.exports()))


@services_app.command("stop")
def services_stop(ctx: typer.Context) -> None:
    """Stop the servers that `services start` started from this folder; their data stays."""
    from transferflow import services

    try:
        services.stop(ctx.obj, echo=typer.echo)
    except TransferflowError as err:
        _fail(err)


@services_app.command("status")
def services_status(ctx: typer.Context) -> None:
    """Which servers answer; exit code 1 unless all three do."""
    from transferflow import services

    up = services.status(ctx.obj)
    for server, answering in up.items():
        typer.echo(f"{server}: {'up' if answering else 'down'}")
    if not all(up.values()):
        raise typer.Exit(1)


@app.command()
def serve(name: str = typer.Option(None, help="registered model name (default: register.model_name)"),
          params: Path = typer.Option(Path("params.yaml"), "--params", "-p"),
          alias: str = typer.Option("champion", help="which alias to serve"),
          host: str = typer.Option("127.0.0.1", help="interface to bind; 0.0.0.0 exposes it to the network"),
          port: int = typer.Option(5000)) -> None:
    """Serve the champion with MLflow's scoring server: POST a JSON list of texts as "inputs" to /invocations."""
    from mlflow.tracking import MlflowClient

    from transferflow import registry, scoring
    from transferflow.tracking import setup_tracking

    model = _model_name(name, params)
    try:
        setup_tracking()
        held = registry.version_by_alias(MlflowClient(), model, alias)
    except TransferflowError as err:
        _fail(err)
    if held is None:
        _fail(f"no version of {model!r} holds @{alias}: run the pipeline first (`transferflow run`)")
    try:  # load it here first: a damaged model is one line, not a server that dies while starting
        scoring.load_served(scoring.model_uri(model, alias))
    except TransferflowError as err:
        _fail(err)
    typer.echo(f"serving {model} v{held.version} (@{alias}) on http://{host}:{port}/invocations")
    try:
        raise typer.Exit(subprocess.call(scoring.serve_command(scoring.model_uri(model, alias), host, port),
                                         env=scoring.serve_env()))
    except KeyboardInterrupt:
        typer.echo("stopped")


@app.command()
def predict(file: Path = typer.Argument(..., help=".csv/.tsv with a text or sentence column, or one text per line"),
            output: Path = typer.Option(None, "--output", "-o", help="CSV to write (default: stdout)"),
            name: str = typer.Option(None, help="registered model name (default: register.model_name)"),
            params: Path = typer.Option(Path("params.yaml"), "--params", "-p"),
            alias: str = typer.Option("champion", help="which alias scores")) -> None:
    """Score a file of texts with the champion; writes text,label as CSV."""
    from mlflow.tracking import MlflowClient

    from transferflow import registry, scoring
    from transferflow.tracking import setup_tracking

    model = _model_name(name, params)
    if not file.is_file():
        _fail(f"{file} not found")
    try:
        texts = scoring.read_texts(file)
        setup_tracking()
        if registry.version_by_alias(MlflowClient(), model, alias) is None:
            _fail(f"no version of {model!r} holds @{alias}: run the pipeline first (`transferflow run`)")
    except (TransferflowError, ValueError) as err:
        _fail(err)
    try:
        labels = scoring.predict_texts(scoring.model_uri(model, alias), texts)
    except TransferflowError as err:
        _fail(err)
    if output:
        with open(output, "w", newline="") as out:
            scoring.write_predictions(texts, labels, out)
        typer.echo(f"{len(texts)} predictions -> {output}", err=True)
    else:
        scoring.write_predictions(texts, labels, sys.stdout)


@app.command()
def strategies() -> None:
    """List the registered fine-tuning strategies with their options."""
    from transferflow.strategy import all_strategies

    for s in all_strategies().values():
        fields = ", ".join(f"{k}={f.default!r}" for k, f in s.Options.model_fields.items())
        models = f"families {'/'.join(s.families)}" if s.families else f"{'/'.join(s.architectures)} models"
        applies = f"{models}, tasks {'/'.join(s.task_types)}"
        typer.echo(f"{s.name:<14} [{s.init}] {s.summary}\n{'':<15}{applies}; options: {fields}")


@app.command("check-params")
def check_params(path: Path = typer.Argument(Path("params.yaml")),
                 schema: bool = typer.Option(False, help="print the JSON schema instead")) -> None:
    """Validate a params file (every error names its key), or print the schema."""
    from flows.dvc_yaml import missing_params
    from transferflow.config import Params, load_params

    if schema:
        typer.echo(json.dumps(Params.model_json_schema(), indent=2))
        return
    try:
        load_params(path)
    except TransferflowError as err:
        _fail(err)
    typer.echo(f"{path}: ok")
    if missing := missing_params(path):  # valid for the flow; dvc would stop on the first of these
        typer.echo(f"warning: {path}: dvc.yaml tracks these keys one by one and `dvc repro` stops on a missing "
                   f"one (the flow takes the defaults); write them out: {', '.join(missing)}", err=True)


@app.command("profile")
def profile_(name: str = typer.Argument(None, help="profile to compose (none: list them)"),
             set_: list[str] = typer.Option(None, "--set", "-S", help=SET_HELP),
             output: Path = typer.Option(Path("params.yaml"), "--output", "-o", help="params file to write")) -> None:
    """Compose a params file from conf/config.yaml and a profile overlay, as `dvc exp run -S profile=NAME`."""
    from transferflow.profiles import profiles, write_params

    if name is None:
        typer.echo("\n".join(profiles()))
        return
    try:
        write_params(name, output, set_)
    except TransferflowError as err:
        _fail(err)
    typer.echo(f"{output}: profile {name}" + (f" with {', '.join(set_)}" if set_ else ""))


@app.command("dvc-yaml")
def dvc_yaml(check: bool = typer.Option(False, help="only check that dvc.yaml is up to date")) -> None:
    """Write dvc.yaml from the stage declarations (tasks/<stage>.py STAGE) and the stages' imports."""
    from flows import dvc_yaml as generated

    if check:
        if generated.DVC_YAML.read_text() != generated.render():
            _fail(f"{generated.DVC_YAML} differs from the stage declarations: run `transferflow dvc-yaml`")
        typer.echo(f"{generated.DVC_YAML}: up to date")
        return
    changed = generated.write()
    typer.echo(f"{generated.DVC_YAML}: {'rewritten' if changed else 'up to date'}")


if __name__ == "__main__":
    sys.exit(app())
