"""The promotion gate against the registry: better promoted, worse and lucky refused, rollback.

The registered models here are pyfuncs whose answers on the smoke test split are chosen row by row, so
each case's counts (and so its verdict) are known in advance; the gate still loads them from the
registry and re-scores them, as it does real ones.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from tasks import promote
from transferflow import registry
from transferflow.cli import app
from transferflow.config import load_params
from transferflow.files import load_prepared


class Answers(mlflow.pyfunc.PythonModel):
    """Answers a chosen label for each known text."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    def predict(self, context, model_input: list[str], params: dict | None = None) -> list[str]:
        return [self.answers[t] for t in model_input]


@pytest.fixture
def setup(in_pretrained):
    """A fresh model name, gate params (1-point margin), the test split, and a way to register answers."""
    name = f"gate-{uuid.uuid4().hex[:8]}"
    base = load_params("params.yaml")
    params = base.model_copy(update={
        "register": base.register.model_copy(update={"model_name": name}),
        "promote": base.promote.model_copy(update={"margin": 0.01, "min_scores": {"accuracy": 0.5}}),
    })
    test = load_prepared("artifacts/prepare/task")["test"]
    names, texts, labels = test.features["label"].names, test["text"], test["label"]
    client = MlflowClient()

    def register(right_rows: set[int], claimed_accuracy: str = "") -> str:
        """Register a model right exactly on `right_rows`; it becomes @challenger."""
        answers = {t: names[y if i in right_rows else 1 - y] for i, (t, y) in enumerate(zip(texts, labels))}
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=Answers(answers))
        tags = {"test_accuracy": claimed_accuracy} if claimed_accuracy else {}
        version = mlflow.register_model(info.model_uri, name, tags=tags).version
        client.set_registered_model_alias(name, registry.CHALLENGER, version)
        return str(version)

    # The champion is right on the first 150 of 200 rows (75%), registered as the register stage would.
    champion = register(set(range(150)))
    registry.set_champion(client, name, champion, action="register", reason="first registered version")
    return name, params, client, register, champion


def rows(champion_only: int, challenger_only: int) -> set[int]:
    """Rows a challenger gets right: the champion's 150 minus `champion_only`, plus `challenger_only` more."""
    return set(range(champion_only, 150)) | set(range(150, 150 + challenger_only))


def champion_of(client, name) -> str:
    return str(client.get_model_version_by_alias(name, registry.CHAMPION).version)


def test_better_challenger_is_promoted_and_everything_is_recorded(setup):
    name, params, client, register, champion = setup
    # It claims 0.99 in its tags; the gate must use what it measures (0.89) instead.
    challenger = register(rows(2, 30), claimed_accuracy="0.99")
    result = promote.main(params)

    assert result["decision"] == "promoted" and champion_of(client, name) == challenger
    assert result["gate"]["challenger"]["accuracy"]["value"] == pytest.approx(178 / 200)
    assert result["gate"]["champion"]["accuracy"]["value"] == pytest.approx(150 / 200)
    assert json.loads(Path("metrics/promote.json").read_text())["decision"] == "promoted"

    new, old = client.get_model_version(name, challenger), client.get_model_version(name, champion)
    assert new.tags["gate.decision"] == "promoted" and new.tags["gate.against"] == champion
    assert float(new.tags["gate.p_value"]) < 0.05
    assert old.tags[f"gate.challenged_by.v{challenger}"].startswith("replaced")
    assert "PROMOTED" in new.description and "| accuracy | 0.7500 [" in new.description
    assert "## Known limits" in new.description

    run = client.get_run(result["run_id"])
    assert run.data.metrics["challenger.test_accuracy"] == pytest.approx(0.89)
    assert run.data.tags["transferflow.gate.decision"] == "promoted"
    assert [e["action"] for e in registry.history(client, name)] == ["register", "promote"]

    again = promote.main(params)  # nothing new: the challenger already is the champion
    assert again["decision"] == "unchanged" and champion_of(client, name) == challenger


def test_worse_challenger_is_refused_and_champion_untouched(setup):
    name, params, client, register, champion = setup
    challenger = register(rows(30, 2))
    result = promote.main(params)

    assert result["decision"] == "refused" and champion_of(client, name) == champion
    failed = {c["name"] for c in result["gate"]["checks"] if not c["passed"]}
    assert "accuracy gain over champion" in failed
    assert client.get_model_version(name, challenger).tags["gate.decision"] == "refused"
    assert client.get_model_version(name, champion).tags[f"gate.challenged_by.v{challenger}"].startswith("kept")
    assert len(registry.history(client, name)) == 1


def test_equal_but_lucky_challenger_is_refused_by_significance(setup, tmp_path):
    """+3 rows (1.5 points, above the margin) with 23 rows disagreeing; run through the CLI and its flow."""
    name, params, client, register, champion = setup
    register(rows(10, 13))
    params_file = tmp_path / "gate.yaml"
    params_file.write_text(json.dumps(params.model_dump(mode="json")))  # JSON is YAML

    out = CliRunner().invoke(app, ["promote", "--params", str(params_file)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "refused" in out.output and f"@champion stays v{champion}" in out.output
    checks = {c["name"]: c["passed"] for c in json.loads(Path("metrics/promote.json").read_text())["gate"]["checks"]}
    assert checks == {"min test accuracy": True, "accuracy gain over champion": True,
                      "significance (McNemar)": False, "never rolled back": True}
    assert champion_of(client, name) == champion


def test_rollback_restores_the_previous_champion_and_keeps_history(setup):
    name, params, client, register, champion = setup
    challenger = register(rows(0, 40))
    assert promote.main(params)["decision"] == "promoted"

    cli = CliRunner()
    out = cli.invoke(app, ["rollback", "--name", name], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert champion_of(client, name) == champion
    assert [e["action"] for e in registry.history(client, name)] == ["register", "promote", "rollback"]
    assert registry.ROLLED_BACK_TAG in client.get_model_version(name, challenger).tags

    listing = cli.invoke(app, ["models", "--name", name], catch_exceptions=False).output
    assert "@champion history" in listing and "rollback" in listing and "promote" in listing

    # Only one reign left: a second rollback is one clear error, not a traceback.
    out = cli.invoke(app, ["rollback", "--name", name])
    assert out.exit_code == 1 and "no previous champion" in out.output and "Traceback" not in out.output
    # The rolled-back version is still @challenger; judging it again does not bring it back.
    assert promote.main(params)["decision"] == "unchanged" and champion_of(client, name) == champion


def test_promote_without_challenger_is_one_clear_error(in_pretrained):
    out = CliRunner().invoke(app, ["rollback", "--name", "no-such-model"])
    assert out.exit_code == 1 and "has no @champion" in out.output
    params = load_params("params.yaml")
    missing = params.model_copy(update={"register": params.register.model_copy(update={"model_name": "nope"})})
    with pytest.raises(promote.PromotionError, match="no @challenger"):
        promote.main(missing)


def test_champion_stack_from_history():
    move = lambda v, prev, action="promote": {"version": v, "previous": prev, "action": action}  # noqa: E731
    assert registry.reigns([move("1", None, "register"), move("2", "1"), move("3", "2")]) == ["1", "2", "3"]
    assert registry.reigns([move("1", None, "register"), move("2", "1"), move("1", "2", "rollback")]) == ["1"]
    # A registry whose champion predates the history: the first move still names who came before.
    assert registry.reigns([move("3", "1")]) == ["1", "3"]
