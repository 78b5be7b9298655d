"""evaluate: score every fine-tuned model on validation and test; write the leaderboard.

    python -m tasks.evaluate [--params params.yaml]

Metrics come from the `evaluate` library, loaded offline (transferflow/metrics). The leaderboard is
sorted by validation score; test is reported beside it and never used to choose. A ner task fills the
same columns from seqeval: accuracy is token accuracy, precision/recall/f1 are entity-level (micro over
entities); per-type F1 goes into the notes, and the confusion matrices count word tags.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import mlflow
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

from transferflow.config import Params
from transferflow.files import atomic_dir, load_prepared, read_json, write_json, write_text
from transferflow.gate import majority_label
from transferflow.metrics import classification_scores
from transferflow.models import load_classifier
from transferflow.token_classification import TAGS, is_tagging, tag_scores
from transferflow.stage import StageSpec, stage_cli
from transferflow.tracking import stage_run

TASK = Path("artifacts/prepare/task")
FINETUNED = Path("artifacts/finetune")
OUT = Path("artifacts/evaluate")
STAGE = StageSpec(
    name="evaluate",
    params=("evaluate", "finetune.strategies", "register.metric", "pretrain.init_from"),
    deps=(str(TASK), str(FINETUNED)),
    outs=(str(OUT),),
    metrics=("metrics/evaluate.json",),
    plots=("plots/confusion.csv", "plots/leaderboard.csv"),
    plot_props={"plots/confusion.csv": {"template": "confusion", "x": "actual", "y": "predicted"},
                "plots/leaderboard.csv": {"template": "bar_horizontal", "x": "test_accuracy", "y": "strategy"}},
)
COLUMNS = ["strategy", "validation_accuracy", "validation_f1", "test_accuracy", "test_f1", "test_precision",
           "test_recall", "beats_majority", "trainable_params", "trainable_pct", "train_seconds", "peak_memory_mb", "optimizer_state_mb", "stored_mb"]


def predict(model_dir: Path, texts: list[str], batch_size: int) -> np.ndarray:
    """Label ids from any strategy's model folder (transformers, peft, scikit-learn: transferflow/models)."""
    return load_classifier(model_dir, batch_size).predict(texts)


def score_split(model_dir: Path, split, batch_size: int) -> tuple[dict, dict, list[int], list[int]]:
    """(scores, per-entity-type scores, reference ids, predicted ids) of one model on one split; the ids
    are what the confusion matrix counts: one per row, or for ner one tag per word."""
    if not is_tagging(split):
        preds = predict(model_dir, split["text"], batch_size)
        return classification_scores(preds, split["label"]), {}, list(split["label"]), list(preds)
    names = split.features[TAGS].feature.names
    index = {name: i for i, name in enumerate(names)}
    pred = load_classifier(model_dir, batch_size).predict_tags(split["tokens"])  # a TokenTagger
    scores, by_type = tag_scores(pred, [[names[t] for t in tags] for tags in split[TAGS]])
    return scores, by_type, [t for tags in split[TAGS] for t in tags], [index[t] for tags in pred for t in tags]


def majority_class(task) -> tuple[int, dict[str, dict]]:
    """The train split's most frequent label, and its scores on validation and test when predicted for
    every row: the floor a strategy that learned anything must clear."""
    label = majority_label(task["train"]["label"])
    return label, {split: classification_scores([label] * len(task[split]), task[split]["label"])
                   for split in ("validation", "test")}


def leaderboard_markdown(rows: list[dict], notes: dict[str, list[str]] | None = None,
                         init_from: str | None = None) -> str:
    """Where pretraining started, the table, then any strategy's notes (summary.json `notes`: layer
    sweep, auxiliary-task scores)."""
    start = f"Pretraining started from `{init_from}` (pretrain.init_from).\n\n" if init_from else \
        "Pretraining started from random weights.\n\n"
    head = start + "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    table = head + "".join("| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |\n" for r in rows)
    lines = [f"- **{name}**: {line}" for name, lines in (notes or {}).items() for line in lines]
    return table + ("\nNotes:\n\n" + "\n".join(lines) + "\n" if lines else "")


def _csv(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _confusion_png(path: Path, refs, preds, label_names: list[str], title: str) -> None:
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(label_names)),) * 2)  # ner: 9 tags need room
    ConfusionMatrixDisplay(confusion_matrix(refs, preds, labels=range(len(label_names))),
                           display_labels=label_names).plot(ax=ax, colorbar=False)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _accuracy_png(path: Path, rows: list[dict]) -> None:
    """Validation and test accuracy per strategy, side by side, in leaderboard order."""
    names, x = [r["strategy"] for r in rows], np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(rows) + 2), 3.5))
    for offset, split in ((-0.2, "validation"), (0.2, "test")):
        ax.bar(x + offset, [r[f"{split}_accuracy"] for r in rows], width=0.4, label=split)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(params: Params, parent_run_id: str | None = None) -> list[dict]:
    """Score every fine-tuned model; write leaderboard, metrics, confusion matrices."""
    p = params.evaluate
    selection = params.register.metric
    with stage_run("evaluate", p.model_dump() | {"strategies": params.finetune.strategies}, parent_run_id):
        task = load_prepared(TASK)
        ner = is_tagging(task["test"])
        label_names = task["test"].features[TAGS].feature.names if ner else task["test"].features["label"].names
        rows, predictions, references, notes = [], {}, {}, {}
        if not ner:
            majority, floor = majority_class(task)
            notes["majority class"] = [
                f"predicting {label_names[majority]!r} for every row scores validation {selection} "
                f"{floor['validation'][selection]:.4f}, test {floor['test'][selection]:.4f}; a strategy not above "
                "it (beats_majority NO) learned nothing from the text, and the promotion gate refuses it"]
        for name in params.finetune.strategies:
            folder = FINETUNED / name
            if not (folder / "summary.json").is_file():
                raise FileNotFoundError(f"{folder} has no finished model: run the finetune stage for {name!r}")
            row: dict = {"strategy": name, "beats_majority": "-"}
            for split in ("validation", "test"):
                scores, by_type, references[split], predictions[(name, split)] = score_split(
                    folder / "model", task[split], p.batch_size)
                row |= {f"{split}_{k}": v for k, v in scores.items()}
            summary = read_json(folder / "summary.json")
            notes[name] = summary.get("notes", [])
            if by_type:  # ner: the last split scored is test
                notes[name].append("test entity F1 by type: " + ", ".join(
                    f"{kind} {s['f1']:.4f} ({s['number']} entities)" for kind, s in by_type.items()))
            # .get: summaries written before a column existed still make a row (blank there)
            row |= {k: summary.get(k) for k in ("trainable_params", "trainable_pct", "train_seconds",
                                                "peak_memory_mb", "optimizer_state_mb", "stored_mb")}
            if not ner:  # validation, where strategies are chosen; the gate has the same floor on test
                row["beats_majority"] = "yes" if row[f"validation_{selection}"] > floor["validation"][selection] else "NO"
            rows.append(row)
        rows.sort(key=lambda r: r[f"validation_{selection}"], reverse=True)
        best = rows[0]["strategy"]
        with atomic_dir(OUT) as tmp:
            write_text(tmp / "leaderboard.md", leaderboard_markdown(rows, notes, params.pretrain.init_from))
            write_text(tmp / "leaderboard.csv", _csv(rows, COLUMNS))
            write_json(tmp / "leaderboard.json", rows)
            _accuracy_png(tmp / "leaderboard.png", rows)
            for name in params.finetune.strategies:
                _confusion_png(tmp / f"confusion_{name}.png", references["test"], predictions[(name, "test")],
                               label_names, f"{name} (test{', word tags' if ner else ''})")
        write_json(STAGE.metrics[0], {"best_by_validation": best, **{r["strategy"]: r for r in rows}})
        confusion_rows = [{"actual": label_names[a], "predicted": label_names[b]}
                          for a, b in zip(references["test"], predictions[(best, "test")])]
        write_text(STAGE.plots[0], _csv(confusion_rows, ["actual", "predicted"]))
        write_text(STAGE.plots[1], _csv(rows, ["strategy", "validation_accuracy", "test_accuracy"]))
        mlflow.log_artifacts(str(OUT), "evaluate")
        for r in rows:
            mlflow.log_metrics({f"{r['strategy']}.{k}": v for k, v in r.items() if isinstance(v, float)})
        mlflow.set_tag("transferflow.best_strategy", best)
    return rows


if __name__ == "__main__":
    stage_cli(main)
