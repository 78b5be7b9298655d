"""dvc.yaml and the Prefect flow describe one DAG: same stages, order, params, deps and outputs."""

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
