"""The params schema: every shipped file loads, and every mistake is one error naming its key."""

from pathlib import Path

import pytest

from transferflow.config import Params, ParamsError, load_params

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(REPO.glob("params*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_params_file_loads(path):
    params = load_params(path)
    assert params.finetune.strategies


def test_every_field_is_documented():
    def walk(model, prefix=""):
        for name, field in model.model_fields.items():
            assert field.description, f"{prefix}{name} has no docstring"
            sub = field.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields"):
                walk(sub, f"{prefix}{name}.")

    walk(Params)


@pytest.mark.parametrize("text, key", [
    ("prepare: {validation_sise: 10}", "prepare.validation_sise"),
    ("pretrain: {max_steps: many}", "pretrain.max_steps"),
    ("pretrain: {model: {num_heads: 3}}", "pretrain.model"),
    ("finetune: {options: {lora: {rank: 4}}}", "finetune"),
    ("bogus_stage: {}", "bogus_stage"),
    ("finetune: {max_length: 512}", "finetune.max_length"),  # beyond the model's 128 positions
    ("finetune: {strategies: [prefix], max_length: 120}", "prefix's 16 positions"),  # 120 + 16 > 128
    ("flow: {dask_address: 'tcp://head:8786'}", "flow.dask_address: needs task_runner: dask"),
    ("flow: {task_runner: dask}", "flow.task_runner: dask needs parallel_finetunes of 2 or more"),
])
def test_bad_params_name_the_key(tmp_path, text, key):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert key in str(err.value)


def test_unknown_strategy_lists_registered(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("finetune: {strategies: [full, magic]}")
    with pytest.raises(ParamsError, match=r"unknown strategy 'magic'; registered: .*full.*lora.*scratch"):
        load_params(path)


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_a_strategy_the_installed_libraries_cannot_run_is_one_params_error(tmp_path, monkeypatch):
    # transformers 5.24's BertModel.forward, as peft's prefix tuning sees it: `cache`, no `past_key_values`
    import transformers
    from typer.testing import CliRunner

    from transferflow.cli import app

    def forward(self, input_ids=None, attention_mask=None, cache=None):
        raise AssertionError("never called: the check reads the signature")

    monkeypatch.setattr(transformers.BertModel, "forward", forward)
    path = tmp_path / "params.yaml"
    path.write_text("finetune: {strategies: [full, prefix]}")
    result = CliRunner().invoke(app, ["check-params", str(path)])
    assert result.exit_code == 2  # a params error is a usage error
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "'prefix' cannot run" in lines[0] and f"transformers {transformers.__version__}" in lines[0]
    path.write_text("finetune: {strategies: [full, lora]}")  # the other strategies still check fine
    assert CliRunner().invoke(app, ["check-params", str(path)]).exit_code == 0


def test_check_params_names_the_keys_dvc_tracks_one_by_one(tmp_path):
    """Valid for the flow, which takes the defaults; dvc.yaml tracks each fine-tuning key and each
    strategy's options on their own, and `dvc repro` stops on a missing one: check-params says which."""
    from typer.testing import CliRunner

    from transferflow.cli import app

    path = tmp_path / "params.yaml"
    path.write_text("finetune: {strategies: [full, lora], options: {lora: {r: 4}}}")
    result = CliRunner().invoke(app, ["check-params", str(path)])
    assert result.exit_code == 0
    assert "finetune.max_steps (default 1000)" in result.output and "finetune.options.full (default {})" in result.output
    assert "finetune.options.lora" not in result.output
    assert CliRunner().invoke(app, ["check-params", str(REPO / "params.yaml")]).output.count("warning") == 0
