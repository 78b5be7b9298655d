"""Which change to the pretraining recipe buys what: the recipe built up one change at a time.

    python bench/recipe_ablation.py              # one seed, about 40 minutes on 2 cores
    python bench/recipe_ablation.py --seeds 2 --fractions 0.01 1.0

Every row pretrains the demo's model for the same pretrain.max_steps with the stage's own code, so the
throughput changes (packed blocks, sparse prediction, no dropout, SDPA, bf16 where faster) are on in
all of them. The first row sets the rest back to what a user starts from (HF's run_mlm defaults); each
next row takes one more of the params' values:

  throughput only   WikiText alone, 15% masking, lr 5e-5 with no warmup and no weight decay
  + corpus mix      the task's train text added prepare.task_text_in_corpus times
  + mask rate       pretrain.mlm_probability
  + schedule        pretrain.learning_rate, warmup_ratio and weight_decay: the params as they are

Each row then fine-tunes scratch, full and head on all labels and scratch and full on each smaller
fraction (tasks/data_efficiency.py:run_one, chosen on validation, scored on test). The tokenizer is
trained on each row's corpus, so each row has its own scratch. It works in --workdir, one folder per row,
writes recipe_ablation.{json,md} there and logs them to MLflow (experiment transferflow-bench).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mlflow  # noqa: E402
from transfer_gain import enter, mean_sd, measure  # noqa: E402

from transferflow.config import Params, load_params  # noqa: E402
from transferflow.tracking import setup_tracking  # noqa: E402

STARTING_POINT = {  # per change, in the order they are added: the value a user starts from (run_mlm's defaults)
    "corpus mix": {"prepare": {"task_text_in_corpus": 0}},
    "mask rate": {"pretrain": {"mlm_probability": 0.15}},
    "schedule": {"pretrain": {"learning_rate": 5e-5, "warmup_ratio": 0.0, "weight_decay": 0.0}},
}


def recipe(params: Params, changes_taken: int) -> Params:
    """params with every change after the first `changes_taken` set back to its starting point."""
    for change in list(STARTING_POINT)[changes_taken:]:
        for section, values in STARTING_POINT[change].items():
            params = params.model_copy(update={section: getattr(params, section).model_copy(update=values)})
    return params


def gains(rows: list[dict], fraction: float) -> list[float]:
    """full − scratch test accuracy at `fraction`, paired by seed."""
    acc = {(r["strategy"], r["seed"]): r["test_accuracy"] for r in rows if r["fraction"] == fraction}
    return [acc["full", seed] - acc["scratch", seed] for strategy, seed in acc if strategy == "full"]


def table(results: list[dict], fractions: list[float]) -> str:
    """One line per row: the pretraining diagnostics, then full − scratch per fraction and the probe."""
    small = [f for f in fractions if f < 1.0]
    head = ["recipe", "held-out loss", "token accuracy", "scratch 100%", "full 100%", "full − scratch 100%",
            *(f"full − scratch {f:.0%}" for f in small), "head 100%"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in results:
        acc = {(r["strategy"], r["fraction"], r["seed"]): r["test_accuracy"] for r in result["rows"]}
        seeds = sorted({r["seed"] for r in result["rows"]})

        def gain(fraction):
            return mean_sd(gains(result["rows"], fraction), signed=True)

        cells = [result["name"],
                 mean_sd([p["loss"] for p in result["pretrained"]]) + f" (unigram {result['unigram']:.2f})",
                 mean_sd([p["token_accuracy"] for p in result["pretrained"]]),
                 mean_sd([acc["scratch", 1.0, s] for s in seeds]), mean_sd([acc["full", 1.0, s] for s in seeds]),
                 gain(1.0), *(gain(f) for f in small), mean_sd([acc["head", 1.0, s] for s in seeds])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds, from pretrain.seed upwards")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 1.0])
    parser.add_argument("--workdir", default="bench/.recipe_ablation")
    args = parser.parse_args()

    params = load_params(args.params)
    fractions = sorted(set(args.fractions) | {1.0}, reverse=True)
    seeds = [params.pretrain.seed + i for i in range(args.seeds)]
    params = params.model_copy(update={"data_efficiency": params.data_efficiency.model_copy(
        update={"strategies": ["scratch", "full"]})})
    work = enter(Path(args.workdir))
    # Absolute, since every row works in its own folder: the default store is a relative SQLite path.
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "transferflow-bench")  # setup_tracking sets it by name
    setup_tracking()
    results = []
    with mlflow.start_run(run_name="recipe_ablation") as bench_run:
        mlflow.log_params({"seeds": args.seeds, "fractions": ",".join(map(str, fractions)), "params": args.params})
        for taken, name in enumerate(["throughput only", *(f"+ {c}" for c in STARTING_POINT)]):
            print(f"\n== {name}", flush=True)
            enter(work / f"{taken}")
            rows, _, _, pretrained = measure(recipe(params, taken), bench_run.info.run_id, seeds,
                                             ["scratch", "full", "head"], fractions, [])
            results.append({"name": name, "rows": rows, "pretrained": pretrained,
                            "unigram": statistics.mean(p["unigram_entropy"] for p in pretrained)})
            for fraction in fractions:  # step = how many changes the row has taken
                mlflow.log_metric(f"gain_full_vs_scratch_{fraction:g}", statistics.mean(gains(rows, fraction)), step=taken)
        report = table(results, fractions)
        print("\n" + report)
        os.chdir(work)
        Path("recipe_ablation.json").write_text(json.dumps(results, indent=1))
        Path("recipe_ablation.md").write_text(report)
        for name in ("recipe_ablation.json", "recipe_ablation.md"):
            mlflow.log_artifact(str(work / name))


if __name__ == "__main__":
    main()
