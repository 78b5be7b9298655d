"""Bad input gets one clear error naming the problem, and loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tasks import evaluate, finetune, prepare, register
from transferflow.config import load_params
from transferflow.data import DataError
from transferflow.files import fingerprint
from transferflow.tracking import TrackingUnavailable, setup_tracking
from tests.helpers import set_params


def _glue_folder(root: Path, train: str, dev: str) -> Path:
    root.mkdir(parents=True)
    (root / "train.tsv").write_text("sentence\tlabel\n" + train)
    (root / "dev.tsv").write_text("sentence\tlabel\n" + dev)
    return root


def test_missing_data_says_dvc_pull(workspace):
    (workspace / "data").unlink()
    with pytest.raises(DataError, match="dvc pull"):
        prepare.main(load_params("params.yaml"))
    assert not Path("artifacts/prepare").exists()


def test_corrupt_labels_are_named(workspace):
    folder = _glue_folder(workspace / "bad", "good film \t1\nbad film \t7\n" * 5, "fine \t0\n")
    set_params(workspace / "params.yaml", prepare={"task_source": str(folder)})
    with pytest.raises(DataError, match=r"labels \[7\] are outside"):
        prepare.main(load_params("params.yaml"))
    assert not Path("artifacts/prepare").exists()


def test_wrong_columns_are_named(workspace):
    folder = workspace / "cols"
    folder.mkdir()
    (folder / "train.tsv").write_text("text\tstars\nok\t1\n")
    (folder / "dev.tsv").write_text("text\tstars\nok\t1\n")
    set_params(workspace / "params.yaml", prepare={"task_source": str(folder)})
    with pytest.raises(DataError, match="expected columns sentence, label"):
        prepare.main(load_params("params.yaml"))


def test_test_text_in_train_is_refused(workspace):
    rows = "".join(f"film number {i} \t{i % 2}\n" for i in range(300))
    folder = _glue_folder(workspace / "leak", rows, "film number 7 \t1\nanother film \t0\n")
    set_params(workspace / "params.yaml", prepare={"task_source": str(folder), "validation_size": 20})
    with pytest.raises(prepare.LeakageError, match="1 test texts also appear in train"):
        prepare.main(load_params("params.yaml"))


def test_tracking_server_down_fails_fast(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # discard port: nothing listens
    started = time.perf_counter()
    with pytest.raises(TrackingUnavailable, match=r"http://127.0.0.1:9 is unreachable"):
        setup_tracking()
    assert time.perf_counter() - started < 30


def test_cli_reports_one_line_for_a_down_server(workspace, monkeypatch):
    env = os.environ | {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-m", "transferflow.cli", "run"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: MLflow tracking at http://127.0.0.1:9 is unreachable")
    assert "Traceback" not in out.stderr


def test_cli_names_a_wrong_params_key(workspace):
    (workspace / "params.yaml").write_text("pretrain: {max_stepz: 3}\n")
    out = subprocess.run([sys.executable, "-m", "transferflow.cli", "run"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "pretrain.max_stepz" in out.stderr and "Traceback" not in out.stderr


def test_unknown_strategy_fails_before_work(in_pretrained):
    with pytest.raises(ValueError, match=r"unknown strategy 'nope'; registered: .*lora"):
        finetune.main(load_params("params.yaml"), "nope")


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


def test_a_single_class_split_is_refused(workspace):
    folder = _glue_folder(workspace / "one", "".join(f"film {i} \t1\n" for i in range(40)), "fine \t0\nok \t1\n")
    set_params(workspace / "params.yaml", prepare={"task_source": str(folder), "validation_size": 5})
    with pytest.raises(DataError, match=r"train: holds a single class \(positive\)"):
        prepare.main(load_params("params.yaml"))
    assert not Path("artifacts/prepare").exists()


def test_label_names_that_do_not_match_the_data_are_refused(workspace):
    rows = "".join(f"film {i} \t{i % 2}\n" for i in range(40))
    folder = _glue_folder(workspace / "two", rows, "fine \t0\nok \t1\n")
    set_params(workspace / "params.yaml", prepare={"task_source": str(folder), "validation_size": 5,
                                                   "label_names": ["negative", "positive", "neutral"]})
    with pytest.raises(DataError, match=r"do not match the data: neutral \(0 rows\)"):
        prepare.main(load_params("params.yaml"))


def test_a_diverging_loss_stops_training_and_leaves_no_model(in_pretrained):
    from transferflow.errors import TrainingError

    params = load_params("params.yaml")
    target = Path("artifacts/finetune/full")
    before = fingerprint([target])
    wild = params.finetune.model_copy(update={"learning_rate": 1e6, "eval_steps": 4, "max_steps": 40})
    with pytest.raises(TrainingError, match=r"is (nan|inf) at step \d+ \(learning rate .*\): training diverged"):
        finetune.main(params.model_copy(update={"finetune": wild}), "full")
    assert fingerprint([target]) == before
    runs = mlflow.search_runs(experiment_names=["transferflow"], output_format="list", max_results=1,
                              order_by=["attributes.start_time DESC"])
    assert runs[0].info.status == "FAILED"


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
