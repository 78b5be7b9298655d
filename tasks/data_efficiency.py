"""data_efficiency: how much labelled data each strategy needs to do well.

    python -m tasks.data_efficiency [--params params.yaml]
    transferflow run --data-efficiency          (the flow runs it only when asked)

Every strategy in data_efficiency.strategies (pretrained `full` and `lora` against `scratch` by
default) is retrained on seeded, stratified fractions of the labelled training split (1%, 10%, 100%),
with the same validation and test splits, by the finetune stage's own function (transferflow/finetuning.py)
and the finetune section's hyperparameters. Models are scored on validation and test, then discarded.
Writes metrics/data_efficiency.json, artifacts/data_efficiency/{table.md,table.json,test_accuracy.png}
and plots/data_efficiency.csv (one test-accuracy column per strategy, for `dvc plots show`); each run
is an MLflow child run of the stage's run.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import datasets
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import mlflow
import numpy as np

from tasks.evaluate import score_split
from tasks.finetune import PRETRAINED, SHARED_PARAMS, TASK, TOKENIZER, fit_inputs
from transferflow.config import Params
from transferflow.files import atomic_dir, load_prepared, write_json, write_text
from transferflow.finetuning import finetune
from transferflow.stage import StageSpec, stage_cli
from transferflow.tracking import stage_run

OUT = Path("artifacts/data_efficiency")
SCRATCH = Path("checkpoints/data_efficiency")
STAGE = StageSpec(
    name="data_efficiency",
    # the fine-tuning settings and options it retrains with; not the list of strategies the finetune stage runs
    params=("data_efficiency", *SHARED_PARAMS, "finetune.options"),
    deps=(str(TASK), str(TOKENIZER), str(PRETRAINED)),
    outs=(str(OUT),),
    metrics=("metrics/data_efficiency.json",),
    plots=("plots/data_efficiency.csv",),
    loads=("tasks/strategies", "transferflow/families"),  # any strategy data_efficiency.strategies names
    plot_props={"plots/data_efficiency.csv": {"x": "train_rows"}},
)
COLUMNS = ["strategy", "fraction", "train_rows", "validation_accuracy", "validation_f1", "test_accuracy", "test_f1",
           "steps", "train_seconds"]


def training_subset(train: datasets.Dataset, fraction: float, seed: int) -> datasets.Dataset:
    """A seeded, stratified `fraction` of `train`; with one seed, smaller fractions sit inside larger ones.
    A ner task has no label per row to stratify on: its sentences are one seeded permutation.

    Hand-written: datasets' train_test_split stratifies, but its subsets of different sizes do not nest.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(train["label"] if "label" in train.column_names else np.zeros(len(train), dtype=int))
    keep: list[int] = []
    for label in np.unique(labels):  # the same permutation per class for every fraction: nested subsets
        rows = rng.permutation(np.flatnonzero(labels == label))
        keep.extend(rows[:max(1, round(fraction * len(rows)))].tolist())
    return train.select(sorted(keep))


def run_one(params: Params, strategy: str, fraction: float, task: datasets.DatasetDict) -> dict:
    """Train one strategy on one fraction (an MLflow child run); score it on validation and test."""
    subset = datasets.DatasetDict(train=training_subset(task["train"], fraction, params.data_efficiency.seed),
                                  validation=task["validation"], test=task["test"])
    SCRATCH.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp, \
            mlflow.start_run(run_name=f"{strategy}-{fraction:g}", nested=True):
        mlflow.set_tags({"transferflow.strategy": strategy, "transferflow.fraction": str(fraction)})
        summary = finetune(fit_inputs(params, Path(tmp) / "checkpoints", subset), strategy, Path(tmp))
        test = score_split(Path(tmp) / "model", task["test"], batch_size=64)[0]  # ner: seqeval, as evaluate
        row = {"strategy": strategy, "fraction": fraction, "train_rows": len(subset["train"]),
               "validation_accuracy": summary["validation"]["accuracy"], "validation_f1": summary["validation"]["f1"],
               "test_accuracy": test["accuracy"], "test_f1": test["f1"], "steps": summary["steps"],
               "train_seconds": summary["train_seconds"]}
        mlflow.log_metrics({k: v for k, v in row.items() if k not in ("strategy", "fraction")})
    return row


def table_markdown(rows: list[dict]) -> str:
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join("| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |\n" for r in rows)


def _wide(rows: list[dict]) -> list[dict]:
    """One row per fraction, one test-accuracy column per strategy: one line each in `dvc plots show`."""
    by_fraction: dict[float, dict] = {}
    for r in rows:
        by_fraction.setdefault(r["fraction"], {"fraction": r["fraction"], "train_rows": r["train_rows"]})
        by_fraction[r["fraction"]][r["strategy"]] = r["test_accuracy"]
    return [by_fraction[f] for f in sorted(by_fraction)]


def _plot_png(path: Path, rows: list[dict], strategies: list[str]) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in strategies:
        mine = sorted((r for r in rows if r["strategy"] == name), key=lambda r: r["train_rows"])
        ax.plot([r["train_rows"] for r in mine], [r["test_accuracy"] for r in mine], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training rows (log scale)")
    ax.set_ylabel("test accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(params: Params, parent_run_id: str | None = None) -> list[dict]:
    """Retrain strategies on fractions of the labelled data; write the table and the plot."""
    d = params.data_efficiency
    with stage_run("data_efficiency", d.model_dump(), parent_run_id):
        task = load_prepared(TASK)
        rows = [run_one(params, name, fraction, task) for fraction in sorted(d.fractions) for name in d.strategies]
        with atomic_dir(OUT) as tmp:
            write_text(tmp / "table.md", table_markdown(rows))
            write_json(tmp / "table.json", rows)
            _plot_png(tmp / "test_accuracy.png", rows, d.strategies)
        write_json(STAGE.metrics[0], {name: {f"fraction_{r['fraction']:g}": {k: r[k] for k in COLUMNS[2:]}
                                             for r in rows if r["strategy"] == name} for name in d.strategies})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["fraction", "train_rows", *d.strategies], lineterminator="\n")
        writer.writeheader()
        writer.writerows(_wide(rows))
        write_text(STAGE.plots[0], buffer.getvalue())
        mlflow.log_artifacts(str(OUT), "data_efficiency")
    return rows


if __name__ == "__main__":
    stage_cli(main)
