"""Shared fixtures: an offline environment and throwaway workspaces where the stages run.

Stages read and write paths relative to the working directory (as under `dvc repro`), so each
workspace is a temporary folder holding `data` (a link to the repo's DVC-restored data/) and a
params.yaml; tests chdir into it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Prefect reads its settings once, when first imported, and huggingface_hub and datasets read theirs
# (offline mode, cache folders) at import too; test modules import the flows and stages (so all three)
# while pytest collects them, before any fixture runs. So these are set here, at conftest import.
STORES = tempfile.mkdtemp(prefix="transferflow-tests-")
"""Prefect's and HF's stores for this session, removed at its end."""
os.environ.update({
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HOME": os.path.join(STORES, "hf"),
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_HOME": os.path.join(STORES, "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # the ephemeral server's first start migrates its database: over 20 s (the default) on a busy 2-core box
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
})


def profile_params(profile: str) -> Path:
    """The params file of a profile (conf/profile/<profile>.yaml over conf/config.yaml), composed once
    per session, as `transferflow profile <profile>` writes it."""
    from transferflow.profiles import compose

    path = Path(STORES) / f"params.{profile}.yaml"
    if not path.is_file():
        path.write_text(compose(profile))
    return path


SMOKE = profile_params("smoke")
"""The smoke profile's params: the pipeline at toy scale, which the end-to-end tests run."""


@pytest.fixture(scope="session", autouse=True)
def offline(tmp_path_factory):
    """A session MLflow store under a temp folder (the offline and Prefect settings: above)."""
    home = tmp_path_factory.mktemp("home")
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(STORES, ignore_errors=True)


@pytest.fixture(autouse=True)
def tracking_follows_env(offline):
    """MLflow keeps the last set_tracking_uri in a global; a test that pointed MLFLOW_TRACKING_URI
    elsewhere (monkeypatch, undone after it) must not leave the next test writing to that store."""
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    yield
    # A run left active makes every later stage's start_run fail: end it, and blame the test that left it.
    if (run := mlflow.active_run()) is not None:
        mlflow.end_run()
        pytest.fail(f"the test left MLflow run {run.info.run_id} active")


def require_data() -> None:
    if not (REPO / "data" / "sst2" / "train.tsv").is_file():
        pytest.fail("data/ is missing: run `dvc pull` in the repo before the tests")


def make_workspace(root: Path, params: Path = SMOKE) -> Path:
    require_data()
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").symlink_to(REPO / "data", target_is_directory=True)
    shutil.copy(params, root / "params.yaml")
    shutil.copy(REPO / "data.dvc", root / "data.dvc")  # the data version that models are tagged with
    return root


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """An empty workspace (smoke params), as the current directory."""
    root = make_workspace(tmp_path / "ws")
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="session")
def pretrained_workspace(tmp_path_factory, offline) -> Path:
    """A workspace where prepare, tokenizer and pretrain have run once (smoke sizes)."""
    from tasks import prepare, pretrain, tokenizer
    from transferflow.config import load_params

    root = make_workspace(tmp_path_factory.mktemp("pretrained"))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        params = load_params("params.yaml")
        for stage in (prepare, tokenizer, pretrain):
            stage.main(params)
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def in_pretrained(pretrained_workspace, monkeypatch) -> Path:
    monkeypatch.chdir(pretrained_workspace)
    return pretrained_workspace
