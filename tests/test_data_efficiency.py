"""data_efficiency: strategies retrained on fractions of the labelled data.

    pytest tests/test_data_efficiency.py

Subsets are seeded, stratified and nested; the stage (tiny fractions, two steps per run) writes its
table, metrics, DVC plot and PNG and logs a child run per training; the flow and the CLI offer it as
an option.
"""

from __future__ import annotations

import csv
import inspect
import json
from collections import Counter

import datasets
import mlflow

from tasks.data_efficiency import training_subset


def test_subsets_are_seeded_stratified_and_nested():
    train = datasets.Dataset.from_dict({"text": [str(i) for i in range(1000)], "label": [0] * 700 + [1] * 300})
    small, large = training_subset(train, 0.1, seed=1), training_subset(train, 0.5, seed=1)
    assert Counter(small["label"]) == {0: 70, 1: 30} and len(large) == 500
    assert set(small["text"]) <= set(large["text"])
    assert small["text"] == training_subset(train, 0.1, seed=1)["text"] != training_subset(train, 0.1, seed=2)["text"]
    assert len(training_subset(train, 0.0001, seed=1)) == 2  # at least one row of each class


def test_stage_writes_table_metrics_and_plots(in_pretrained):
    from tasks import data_efficiency
    from transferflow.config import load_params

    params = load_params("params.yaml")
    strategies = ["scratch", "full", "lora"]
    params = params.model_copy(update={
        "finetune": params.finetune.model_copy(update={"max_steps": 2, "eval_steps": 2}),
        "data_efficiency": params.data_efficiency.model_copy(update={"fractions": [0.05, 0.2],
                                                                     "strategies": strategies}),
    })
    rows = data_efficiency.main(params)

    assert [(r["strategy"], r["fraction"]) for r in rows] == [(s, f) for f in (0.05, 0.2) for s in strategies]
    assert {r["train_rows"] for r in rows} == {100, 400}  # of the smoke profile's 2,000 training rows
    assert all(0 <= r["test_accuracy"] <= 1 for r in rows)
    out = in_pretrained / "artifacts/data_efficiency"
    assert (out / "table.md").read_text().count("\n") == 2 + len(rows)
    assert json.loads((out / "table.json").read_text()) == rows
    assert (out / "test_accuracy.png").stat().st_size > 0
    metrics = json.loads((in_pretrained / "metrics/data_efficiency.json").read_text())
    assert set(metrics) == set(strategies) and set(metrics["lora"]) == {"fraction_0.05", "fraction_0.2"}
    with open(in_pretrained / "plots/data_efficiency.csv") as f:
        plot = list(csv.DictReader(f))
    assert [r["train_rows"] for r in plot] == ["100", "400"] and set(plot[0]) == {"fraction", "train_rows", *strategies}

    parent = mlflow.search_runs(experiment_names=["transferflow"], output_format="list",
                                filter_string="tags.`transferflow.stage` = 'data_efficiency'")[0]
    children = mlflow.search_runs(experiment_names=["transferflow"], output_format="list",
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(r.info.run_name for r in children) == sorted(f"{s}-{f:g}" for s in strategies for f in (0.05, 0.2))


def test_flow_and_cli_offer_it_as_an_option():
    from typer.testing import CliRunner

    from flows.pipeline import pipeline
    from transferflow.cli import app

    assert inspect.signature(pipeline.fn).parameters["data_efficiency"].default is False
    assert "--data-efficiency" in CliRunner().invoke(app, ["run", "--help"]).output
