"""Serving the champion: MLflow's scoring server answers like the model in-process; batch predict too."""

from __future__ import annotations

import csv
import io
import os
import uuid

import httpx
import pytest
from typer.testing import CliRunner

from bench import serve_soak
from tasks import evaluate, finetune, register
from transferflow import scoring
from transferflow.cli import app
from transferflow.config import load_params
from transferflow.files import load_prepared

TEXTS = ["a gripping , funny film", "a dull , lifeless mess", "it is what it is", "a triumph", "tedious"]


@pytest.fixture(scope="module")
def champion(pretrained_workspace):
    """A real model (scratch strategy, smoke sizes) trained and registered under a fresh name."""
    cwd = os.getcwd()
    os.chdir(pretrained_workspace)
    try:
        base = load_params("params.yaml")
        name = f"serve-{uuid.uuid4().hex[:8]}"
        params = base.model_copy(update={"finetune": base.finetune.model_copy(update={"strategies": ["scratch"]}),
                                         "register": base.register.model_copy(update={"model_name": name})})
        finetune.main(params, "scratch")
        evaluate.main(params)
        register.main(params)
        yield name
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def served(champion, pretrained_workspace, tmp_path_factory):
    """`transferflow serve` for the champion, started once: its URL."""
    cwd = os.getcwd()
    os.chdir(pretrained_workspace)
    try:
        with scoring.running_server(champion, tmp_path_factory.mktemp("serve") / "serve.log") as url:
            yield url
    finally:
        os.chdir(cwd)
    with pytest.raises(httpx.HTTPError):  # stopped with its workers: nothing answers any more
        httpx.get(f"{url}/ping", timeout=2)


def test_served_predictions_match_in_process(champion, served, in_pretrained):
    texts = TEXTS + list(load_prepared("artifacts/prepare/task")["test"]["text"])[:40]
    expected = scoring.predict_texts(scoring.model_uri(champion), texts)
    for batch in (texts, texts[:1]):  # a batch, and a single text
        answer = httpx.post(f"{served}/invocations", json={"inputs": batch}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == expected[:len(batch)]


def test_soak_answers_every_request_and_survives_malformed_and_huge_ones(served):
    """Two cycles of bench/serve_soak.py's loop: every text answered, every malformed body a 4xx, and
    the text after each malformed or 1 MB request answered."""
    tallies = serve_soak.soak(served, 2 * len(serve_soak.CYCLE))
    assert {k.name for k in serve_soak.CYCLE} | {"after malformed", "after 1 MB"} == set(tallies)
    assert {name: t.unexpected for name, t in tallies.items() if t.unexpected} == {}
    assert len(tallies["after malformed"].latencies_ms) == 2 * len(serve_soak.MALFORMED)


def test_predict_scores_a_file_like_the_model(champion, in_pretrained, tmp_path):
    lines = tmp_path / "reviews.txt"
    lines.write_text("\n".join(TEXTS) + "\n")
    table = tmp_path / "reviews.tsv"
    table.write_text("sentence\tlabel\n" + "".join(f"{t}\t0\n" for t in TEXTS))
    expected = scoring.predict_texts(scoring.model_uri(champion), TEXTS)

    out = CliRunner().invoke(app, ["predict", str(lines), "--name", champion], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["text"] for r in rows] == TEXTS and [r["label"] for r in rows] == expected

    target = tmp_path / "out.csv"
    out = CliRunner().invoke(app, ["predict", str(table), "--name", champion, "-o", str(target)])
    assert out.exit_code == 0, out.output
    assert [r["label"] for r in csv.DictReader(target.open())] == expected


def test_model_card_is_the_version_description(champion, in_pretrained):
    from mlflow.tracking import MlflowClient

    version = MlflowClient().get_model_version_by_alias(champion, "champion")
    card = version.description
    for part in ("# Model card", "DVC hash", "## Pretraining", "## Hyperparameters",
                 "| test | ", "## Promotion gate", "## Intended use", "## Known limits"):
        assert part in card, part
    assert "scratch" in card


def test_serve_and_predict_without_champion_are_one_clear_error(in_pretrained, tmp_path):
    (tmp_path / "x.txt").write_text("fine\n")
    for args in (["serve", "--name", "no-such-model"], ["predict", str(tmp_path / "x.txt"), "--name", "no-such-model"]):
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 1 and "holds @champion" in out.output and "Traceback" not in out.output
