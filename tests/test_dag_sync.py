"""dvc.yaml and the Prefect flow describe one DAG: dvc.yaml is generated from the stage declarations the
flow reads; and the deps name every module whose code a stage runs (and, per strategy, no other
strategy's), so changing it re-runs the stage (dvc) and misses the cache (Prefect)."""

import subprocess
import sys
from pathlib import Path

import yaml

from flows.pipeline import STAGES
from tests.conftest import SMOKE

REPO = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_is_generated_from_the_stage_declarations():
    from flows.dvc_yaml import render

    assert (REPO / "dvc.yaml").read_text() == render(), "dvc.yaml is stale: run `transferflow dvc-yaml`"


def test_flow_runs_the_dvc_stages_in_the_same_order():
    assert [m.STAGE.name for m in STAGES] == list(DVC)


def test_foreach_stage_iterates_the_strategies():
    assert DVC["finetune"]["foreach"] == "${finetune.strategies}"


def test_every_stage_module_is_in_the_flow():
    modules = {p.stem for p in (REPO / "tasks").glob("*.py") if p.stem != "__init__"}
    assert modules == {m.STAGE.name for m in STAGES}


def test_code_deps_follow_imports_into_functions_and_packages():
    from transferflow.stage import code_deps

    finetune = code_deps("finetune", ("tasks/strategies/{item}.py",))
    # lora imports token_classification inside a function; the metrics package is loaded by path
    assert {"transferflow/token_classification.py", "transferflow/metrics", "transferflow/strategy.py"} <= set(finetune)
    # one strategy file per fine-tune, named by the item: no other strategy's file
    assert [d for d in finetune if d.startswith("tasks/strategies/")] == ["tasks/strategies/{item}.py"]
    # stage declarations, the params schema and output helpers re-run nothing
    assert not {"transferflow/config.py", "transferflow/stage.py", "transferflow/files.py"} & set(finetune)
    # data_efficiency may run any strategy: the whole folder
    assert "tasks/strategies" in code_deps("data_efficiency", ("tasks/strategies",))


def test_one_strategy_runs_only_its_own_file():
    """What lets finetune@lora depend on lora.py alone: asking for a strategy imports its file, no other."""
    code = ("import sys; from transferflow.strategy import get_strategy; get_strategy('lora'); "
            "print(sorted(m for m in sys.modules if m.startswith('tasks.strategies.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['tasks.strategies.lora']"


def test_finetune_cache_key_follows_its_own_options_only():
    from tasks import finetune
    from transferflow.config import load_params

    params = load_params(SMOKE)
    options = {**params.finetune.options, "lora": {**params.finetune.options["lora"], "r": 4}}
    changed = params.model_copy(update={"finetune": params.finetune.model_copy(update={"options": options})})
    assert finetune.STAGE.cache_key(changed, "lora") != finetune.STAGE.cache_key(params, "lora")
    assert finetune.STAGE.cache_key(changed, "full") == finetune.STAGE.cache_key(params, "full")


def test_prepare_cache_key_follows_the_data_the_params_name(tmp_path):
    from tasks import prepare
    from transferflow.config import load_params

    params = load_params(SMOKE)
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
