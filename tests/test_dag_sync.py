"""dvc.yaml and the Prefect flow describe one DAG: same stages, order, params, deps and outputs; and the
deps name every module whose code a stage runs, so changing it re-runs the stage (dvc) and misses the
cache (Prefect)."""

import ast
from pathlib import Path

import pytest
import yaml

from flows.pipeline import STAGES

REPO = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _paths(entries) -> tuple[str, ...]:
    """dvc.yaml lists entries as plain paths or {path: options}."""
    return tuple(next(iter(e)) if isinstance(e, dict) else e for e in entries or [])


def _stage_body(name: str) -> dict:
    body = DVC[name]
    return body["do"] if "foreach" in body else body


def test_flow_runs_the_dvc_stages_in_the_same_order():
    assert [m.STAGE.name for m in STAGES] == list(DVC)


@pytest.mark.parametrize("module", STAGES, ids=lambda m: m.STAGE.name)
def test_stage_declarations_match_dvc_yaml(module):
    spec, body = module.STAGE, _stage_body(module.STAGE.name)
    item = "${item}" if "foreach" in DVC[spec.name] else None
    spec = spec.for_item(item)
    assert tuple(body["params"]) == spec.params
    assert _paths(body["deps"]) == spec.deps
    assert _paths(body.get("outs")) == spec.outs
    assert _paths(body.get("metrics")) == spec.metrics
    assert _paths(body.get("plots")) == spec.plots
    assert body["cmd"].split()[:3] == ["python", "-m", f"tasks.{spec.name}"]


def test_foreach_stage_iterates_the_strategies():
    assert DVC["finetune"]["foreach"] == "${finetune.strategies}"


def test_every_stage_module_is_in_the_flow():
    modules = {p.stem for p in (REPO / "tasks").glob("*.py") if p.stem != "__init__"}
    assert modules == {m.STAGE.name for m in STAGES}


PLUMBING = {"transferflow/__init__.py", "transferflow/config.py", "transferflow/stage.py", "transferflow/tracking.py",
            "transferflow/files.py", "transferflow/errors.py"}
"""Modules every stage uses that change no stage's result: environment defaults, the params schema (the
values themselves are params deps), stage declarations, MLflow runs, writing and reading outputs, and
the error types."""


def _module_file(dotted: str) -> str | None:
    for candidate in (f"{dotted.replace('.', '/')}.py", f"{dotted.replace('.', '/')}/__init__.py"):
        if (REPO / candidate).is_file():
            return candidate
    return None


def _imports(file: str) -> set[str]:
    """Repo files a module imports, at top level or inside functions. Importing a package counts as
    importing every file under it: tasks.strategies imports all of them, and the metric scripts under
    transferflow/metrics are loaded by path."""
    names = set()
    for node in ast.walk(ast.parse((REPO / file).read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    files = {f for f in map(_module_file, names) if f}
    packages = [f for f in files if f.endswith("/__init__.py") and f not in PLUMBING]
    return files | {str(p.relative_to(REPO)) for f in packages for p in (REPO / f).parent.rglob("*.py")}


def _code_run_by(file: str) -> set[str]:
    seen, todo = set(), [file]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += [] if current in PLUMBING else _imports(current)
    return seen - PLUMBING


@pytest.mark.parametrize("module", STAGES, ids=lambda m: m.STAGE.name)
def test_stage_deps_name_every_module_whose_code_it_runs(module):
    deps = module.STAGE.deps
    code = _code_run_by(str(Path(module.__file__).relative_to(REPO)))
    missing = sorted(f for f in code if not any(f == d or f.startswith(f"{d}/") for d in deps))
    assert not missing, f"{module.STAGE.name} runs code from {missing}, which its deps do not name"


def test_prepare_cache_key_follows_the_data_the_params_name(tmp_path):
    from tasks import prepare
    from transferflow.config import load_params

    params = load_params(REPO / "params.smoke.yaml")
    sources = {}
    for key in ("task_source", "corpus_source", "aux_task_source"):
        (tmp_path / key).mkdir()
        (tmp_path / key / "train.tsv").write_text("sentence\tlabel\na fine film\t1\n")
        sources[key] = str(tmp_path / key)
    params = params.model_copy(update={"prepare": params.prepare.model_copy(update=sources)})
    assert set(sources.values()) <= set(prepare.STAGE.resolve(params).deps)

    before = prepare.STAGE.cache_key(params)
    (tmp_path / "task_source" / "train.tsv").write_text("sentence\tlabel\na dull film\t0\n")
    assert prepare.STAGE.cache_key(params) != before  # same path, new content: prepare runs again
