"""Bad input gets one clear error naming the problem, and loses nothing.

The table (tests/bad_inputs.py) runs every row through the `transferflow` command, in this process,
against a registry that holds a champion; each row checks the one `error:` line and its exit code, that
no traceback was printed, and that nothing changed: the registry's versions and aliases, the outputs
of the stage that failed and of every later one, and no MLflow run left RUNNING.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from typer.main import get_command

from flows.pipeline import STAGES
from tasks import evaluate, finetune, register
from tests.bad_inputs import CASES, Case
from tests.conftest import make_workspace
from tests.helpers import set_params
from transferflow.cli import app
from transferflow.config import load_params
from transferflow.data import DataError
from transferflow.files import fingerprint
from transferflow.tracking import TrackingUnavailable, setup_tracking

MODEL = "transferflow-sst2"  # the smoke profile's register.model_name
STAGE_NAMES = [m.STAGE.name for m in STAGES]


@pytest.fixture(scope="module")
def champion_registry(tmp_path_factory, offline):
    """A tracking store where the smoke pipeline (tfidf only) has registered and promoted v1."""
    from flows.pipeline import pipeline

    root = make_workspace(tmp_path_factory.mktemp("champion"))
    set_params(root / "params.yaml", finetune={"strategies": ["tfidf"]})
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved, cwd = os.environ["MLFLOW_TRACKING_URI"], os.getcwd()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.chdir(root)
    try:
        pipeline(params_file="params.yaml")
    finally:
        os.chdir(cwd)
        os.environ["MLFLOW_TRACKING_URI"] = saved
        mlflow.set_tracking_uri(saved)
    return uri


def _registry(uri: str) -> tuple:
    """Versions (with tags), aliases, and RUNNING runs of a tracking store."""
    client = MlflowClient(uri)
    versions = sorted((str(v.version), tuple(sorted(v.tags.items()))) for v in client.search_model_versions())
    aliases = sorted((m.name, tuple(sorted(m.aliases.items()))) for m in client.search_registered_models())
    running = [r.info.run_id for e in client.search_experiments()
               for r in client.search_runs([e.experiment_id], "attributes.status = 'RUNNING'")]
    return versions, aliases, running


@contextmanager
def _mounted_artifacts(ws: Path, options: str):
    """artifacts/ as a tmpfs mount: read-only, or so small that the first write fills it."""
    target = ws / "artifacts"
    target.mkdir(exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
    if out.returncode:
        pytest.skip(f"needs root and tmpfs mounts (CI has both): {out.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


@contextmanager
def _corrupt_champion(uri: str):
    """@champion's model folder moved out of the artifact store (restored afterwards)."""
    client = MlflowClient(uri)
    version = client.get_model_version_by_alias(MODEL, "champion")
    folder = Path(client.get_model_version_download_uri(MODEL, version.version).removeprefix("file://"))
    aside = folder.with_name(folder.name + ".aside")
    shutil.move(folder, aside)
    try:
        yield
    finally:
        shutil.move(aside, folder)


FAULTS = {"read-only": lambda ws, uri: _mounted_artifacts(ws, "ro,size=1m"),
          "full": lambda ws, uri: _mounted_artifacts(ws, "size=64k"),
          "corrupt": lambda ws, uri: _corrupt_champion(uri)}
REPORT: list[dict] = []


def _outputs_from(stage: str) -> list[Path]:
    """Outputs of `stage` and of every stage after it (`params`: of every stage)."""
    later = STAGES if stage == "params" else STAGES[STAGE_NAMES.index(stage):]
    return [Path(out) for m in later for out in m.STAGE.outs]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_prints_one_line_and_changes_nothing(case: Case, champion_registry, tmp_path, monkeypatch, capfd):
    ws = make_workspace(tmp_path / "ws")
    monkeypatch.chdir(ws)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_registry)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.format(ws=ws))
    # the store the row's command writes to, or the champion's when that is a server that is down
    store = os.environ["MLFLOW_TRACKING_URI"] if os.environ["MLFLOW_TRACKING_URI"].startswith("sqlite") else champion_registry
    args = case.setup(ws)
    with ExitStack() as faults:
        if case.needs:
            faults.enter_context(FAULTS[case.needs](ws, champion_registry))
        before = _registry(store), fingerprint(_outputs_from(case.stops_in))
        capfd.readouterr()
        started = time.perf_counter()
        code = get_command(app).main(args, prog_name="transferflow", standalone_mode=False)
        seconds = time.perf_counter() - started
        out, err = capfd.readouterr()
        after = _registry(store), fingerprint(_outputs_from(case.stops_in))
    # \r too: a progress bar that training left open (tqdm redraws with \r) shares the error's line
    errors = [line.split("error: ", 1)[1] for line in re.split(r"[\r\n]", err) if "error: " in line]
    REPORT.append({"row": case.id, "input": case.what, "line": errors[0] if errors else err[-300:],
                   "seconds": round(seconds, 1)})
    assert code == case.code, err[-3000:]
    assert len(errors) == 1 and re.search(case.line, errors[0]), err[-3000:]
    assert "Traceback" not in err + out, err[-3000:]
    assert after == before  # registry, aliases, RUNNING runs; outputs of the failed stage and later ones
    leftovers = [p for p in Path("artifacts").rglob("*") if ".partial-" in p.name] if Path("artifacts").exists() else []
    assert not leftovers


@pytest.fixture(scope="module", autouse=True)
def _report():
    """TRANSFERFLOW_BAD_INPUT_REPORT=FILE: write the table's rows with their seconds (markdown)."""
    yield
    if (path := os.environ.get("TRANSFERFLOW_BAD_INPUT_REPORT")) and REPORT:
        lines = ["| row | input | the line the user sees | seconds |", "|---|---|---|---|"]
        lines += [f"| {r['row']} | {r['input']} | `{r['line']}` | {r['seconds']} |" for r in REPORT]
        Path(path).write_text("\n".join(lines) + "\n")
        Path(path).with_suffix(".json").write_text(json.dumps(REPORT, indent=1))


def test_tracking_server_down_fails_fast(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard port: nothing listens
    started = time.perf_counter()
    with pytest.raises(TrackingUnavailable, match=r"http://127.0.0.1:9 is unreachable"):
        setup_tracking()
    assert time.perf_counter() - started < 30


def test_failed_training_leaves_no_output(in_pretrained, monkeypatch):
    import transformers

    def crash(self, *args, **kwargs):
        raise RuntimeError("simulated crash mid-training")

    target = Path("artifacts/finetune/full")
    before = fingerprint([target])
    monkeypatch.setattr(transformers.Trainer, "train", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        finetune.main(load_params("params.yaml"), "full")
    assert fingerprint([target]) == before  # absent stays absent, a previous model stays intact
    assert not [p for p in target.parent.iterdir() if "partial" in p.name]


def test_failed_registration_leaves_no_registry_entry(in_pretrained, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'reg.db'}")
    params_file = in_pretrained / "params.yaml"
    params = load_params(params_file)
    params = params.model_copy(update={"finetune": params.finetune.model_copy(update={"strategies": ["full"]}),
                                       "register": params.register.model_copy(update={"model_name": "broken"})})
    finetune.main(params, "full")
    evaluate.main(params)

    def refuse(*args, **kwargs):
        raise RuntimeError("registry refused the alias")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", refuse)
    with pytest.raises(RuntimeError, match="registry refused"):
        register.main(params)
    assert MlflowClient().search_model_versions("name='broken'") == []


@pytest.mark.parametrize("error, retried", [
    (DataError("bad row"), False), (ValueError("a bug"), False), (TrackingUnavailable("server away"), True),
    (ConnectionError("reset"), True), (TimeoutError("slow"), True)])
def test_only_transient_faults_are_retried(error, retried):
    from prefect.states import Failed

    from flows.pipeline import retry_if_transient

    assert retry_if_transient(None, None, Failed(data=error)) is retried


def test_a_run_whose_process_was_killed_is_ended_on_the_next_start(tmp_path, monkeypatch):
    from transferflow.tracking import end_orphaned_runs, pipeline_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'orphans.db'}")
    code = ("import os, signal, mlflow; from transferflow.tracking import stage_run\n"
            "with stage_run('pretrain', {}) as run:\n"
            "    print(run.info.run_id, flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == -9, out.stderr[-2000:]
    orphan = out.stdout.split()[0]
    setup_tracking()
    assert MlflowClient().get_run(orphan).info.status == "RUNNING"
    with pipeline_run("next") as run:  # the next start ends it, and leaves its own run alone
        assert MlflowClient().get_run(orphan).info.status == "KILLED"
        assert end_orphaned_runs() == [] and mlflow.active_run().info.run_id == run.info.run_id


def test_verbose_adds_the_traceback_to_the_one_line(workspace, capfd):
    (workspace / "params.yaml").write_text("pretrain: {max_stepz: 3}\n")
    for args, traceback in ((["check-params"], False), (["--verbose", "check-params"], True)):
        code = get_command(app).main(args, prog_name="transferflow", standalone_mode=False)
        err = capfd.readouterr().err
        assert code == 2 and err.strip().endswith("error: params.yaml: pretrain.max_stepz: Extra inputs are not permitted")
        assert ("Traceback" in err) is traceback
    get_command(app).main(["check-params"], prog_name="transferflow", standalone_mode=False)  # quiet again


def test_a_second_run_in_a_busy_workspace_fails_at_once_naming_the_holder(workspace, capfd):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from transferflow.workspace_lock import workspace_lock\n"
         "with workspace_lock():\n    print('held', flush=True); time.sleep(600)"],
        cwd=workspace, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for command in (["run"], ["repro"]):
            code = get_command(app).main(command, prog_name="transferflow", standalone_mode=False)
            err = capfd.readouterr().err
            assert code == 1 and f"error: another run holds .transferflow.lock in {workspace} (pid {holder.pid}" in err
        assert not (workspace / "artifacts").exists() and not (workspace / "mlruns").exists()  # nothing started
    finally:
        holder.kill()  # SIGKILL: the OS frees the lock with the process
        holder.wait()
    from transferflow.workspace_lock import workspace_lock

    with workspace_lock():
        pass
