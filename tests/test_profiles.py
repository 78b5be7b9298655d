"""Profiles as overlays: params.yaml is composed (Hydra, as `dvc exp run -S profile=...` does) from
conf/config.yaml, the demo, and one conf/profile/<name>.yaml that holds only what the profile changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from transferflow.cli import app
from transferflow.config import load_params
from transferflow.profiles import CONF, compose, profiles

REPO = Path(__file__).resolve().parents[1]


def _leaves(tree: dict, prefix: str = "") -> dict:
    """{dotted key: value} of a nested mapping; a list or an empty mapping is a leaf."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_params_yaml_is_the_composed_demo():
    assert (REPO / "params.yaml").read_text() == compose("demo"), "run `transferflow profile demo`"


@pytest.mark.parametrize("profile", profiles())
def test_every_profile_composes_into_valid_params(profile, tmp_path):
    (tmp_path / "params.yaml").write_text(compose(profile))
    load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("profile", profiles())
def test_an_overlay_holds_only_what_differs_from_the_demo(profile):
    base = _leaves({k: v for k, v in yaml.safe_load((CONF / "config.yaml").read_text()).items() if k != "defaults"})
    overlay = _leaves(yaml.safe_load((CONF / "profile" / f"{profile}.yaml").read_text()) or {})
    copies = sorted(k for k, v in overlay.items() if k in base and base[k] == v)
    assert not copies, f"conf/profile/{profile}.yaml repeats the demo's values of {copies}"


def test_the_flow_composes_what_dvc_composes(tmp_path):
    """DVC's own composition (dvc exp run -S) and ours write the same params.yaml."""
    from dvc.utils.hydra import compose_and_dump

    out = tmp_path / "params.yaml"
    compose_and_dump(out, str(CONF), None, "config", str(REPO), ["profile=smoke", "finetune.max_steps=7"])
    assert out.read_text() == compose("smoke", ["finetune.max_steps=7"])


def test_profile_command_writes_params_only_when_they_validate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["profile", "smoke", "-S", "finetune.max_steps=7"]).exit_code == 0
    assert load_params("params.yaml").finetune.max_steps == 7
    before = Path("params.yaml").read_text()
    for bad in (["profile", "nope"], ["profile", "smoke", "-S", "+finetune.no_such_key=1"],
                ["profile", "smoke", "-S", "finetune.max_steps=-1"]):
        result = runner.invoke(app, bad)
        assert result.exit_code != 0 and result.output.startswith("error: "), result.output
        assert Path("params.yaml").read_text() == before  # a bad profile or override changes nothing
    assert sorted(Path().iterdir()) == [Path("params.yaml")]  # nothing half-written left behind
