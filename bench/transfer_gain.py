"""Does pretraining pay, and after how many CPU minutes? Transfer against scratch and tfidf, over seeds.

    python bench/transfer_gain.py --seeds 3                                   # the demo's budget
    python bench/transfer_gain.py --seeds 3 --pretrain-minutes 2 5 10 20 40   # the break-even curve
    python bench/transfer_gain.py --seeds 3 --fractions 0.01 1.0 --params params.yaml

For each pretraining budget and seed it pretrains the encoder (pretrain.seed = seed), then fine-tunes
every --strategies at 100% of the labels and the data_efficiency strategies at each smaller fraction
(finetune.seed = data_efficiency.seed = seed), with the stages' own code (tasks/pretrain.py,
tasks/data_efficiency.py:run_one). scratch and tfidf do not depend on pretraining: they run once per
seed. Every model is chosen on validation and scored on test.

It prints mean ± sd over seeds of test accuracy, and the paired differences (same seed, same subset)
against scratch and tfidf. With several budgets it also prints the break-even table: full − scratch
per budget and fraction, and the first budget where the mean difference is above zero. A budget in
minutes becomes pretrain.max_steps from two short calibration runs here (calibrate).

It works in --workdir (its own prepare, tokenizer and pretrain outputs: the project's artifacts/ are
left alone), writes transfer_gain.{json,md,png} there, and logs them with the figures to MLflow
(experiment transferflow-bench, MLFLOW_TRACKING_URI as the pipeline). 2 CPU cores: about 20 minutes
per seed at the demo budget with the default fractions (3 seeds took 71 minutes on 2026-12-03).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402

from tasks import prepare, pretrain, tokenizer  # noqa: E402
from tasks.data_efficiency import run_one  # noqa: E402
from transferflow.config import Params, load_params  # noqa: E402
from transferflow.files import load_prepared  # noqa: E402
from transferflow.tracking import setup_tracking  # noqa: E402

NO_PRETRAINING = ("scratch", "tfidf")
"""Strategies whose result does not depend on the pretrained encoder: run once per seed."""


def seeded(params: Params, seed: int, max_steps: int | None) -> Params:
    """params with every training seed set to `seed` (prepare's split stays fixed) and the budget."""
    pre = {"seed": seed}
    if max_steps is not None:
        pre |= {"max_steps": max_steps, "eval_steps": max(1, max_steps // 3)}
    return params.model_copy(update={
        "pretrain": params.pretrain.model_copy(update=pre),
        "finetune": params.finetune.model_copy(update={"seed": seed}),
        "data_efficiency": params.data_efficiency.model_copy(update={"seed": seed}),
    })


def calibrate(params: Params, seed: int, parent: str) -> tuple[float, float]:
    """(seconds per step, fixed seconds) of pretraining this model on this machine, from two short runs.

    Each run evaluates three times (eval_steps is a third of max_steps, as in a budgeted run), so the
    slope between them is training alone and the intercept is start-up and evaluation. A first, discarded
    run takes the process's one-time warm-up (seen: 40 steps in 33 s cold, 160 in 37 s warm). One cold
    50-step probe read it all as per-step cost: a "15 min" budget became 2,215 steps trained in 8 minutes.
    With this calibration (2026-12-03, demo model) a "2 min" budget became 539 steps trained in 104 s:
    later steps ran faster still, so that budget came out 13% short rather than twice over.
    """
    pretrain.main(seeded(params, seed, 20), parent)  # warm-up
    short, long = (pretrain.main(seeded(params, seed, steps), parent) for steps in (40, 160))
    per_step = (long["train_seconds"] - short["train_seconds"]) / (long["steps"] - short["steps"])
    if per_step <= 0:  # timing noise on a loaded machine: fall back to the long run's average
        return long["train_seconds"] / long["steps"], 0.0
    return per_step, max(0.0, short["train_seconds"] - per_step * short["steps"])


def enter(workdir: Path) -> Path:
    """Make `workdir` the current folder, with the project's data linked in: the stages read and write
    artifacts/ relative to it, so the project's own artifacts/ are left alone."""
    work = workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "data").exists():
        (work / "data").symlink_to((ROOT / "data").resolve())
    os.chdir(work)
    return work


def measure(params: Params, parent: str, seeds: list[int], strategies: list[str], fractions: list[float],
            budgets_minutes: list[float]) -> tuple[list[dict], list[str], dict[str, float], list[dict]]:
    """Prepare, train the tokenizer, then per budget and seed pretrain and fine-tune; in the current folder.

    Returns the test rows (budget "any" for what does not depend on pretraining), the budgets' names,
    their measured pretraining minutes and the pretraining summaries (with their budget and seed).
    """
    prepare.main(params, parent)
    tokenizer.main(params, parent)
    task = load_prepared(Path("artifacts/prepare/task"))
    rows: list[dict] = []
    budgets: list[str] = []
    minutes: dict[str, float] = {}
    pretrained: list[dict] = []
    seconds_per_step = fixed_seconds = None
    plan = [(None, f"{params.pretrain.max_steps} steps")] if not budgets_minutes else \
        [(m, f"{m:g} min") for m in budgets_minutes]
    for budget_minutes, budget in plan:
        budgets.append(budget)
        for seed in seeds:
            steps = None
            if budget_minutes is not None:
                if seconds_per_step is None:
                    seconds_per_step, fixed_seconds = calibrate(params, seed, parent)
                steps = max(10, round((budget_minutes * 60 - fixed_seconds) / seconds_per_step))
            run_params = seeded(params, seed, steps)
            started = time.perf_counter()
            summary = pretrain.main(run_params, parent)
            seconds = time.perf_counter() - started
            minutes[budget] = summary["train_seconds"] / 60
            pretrained.append(summary | {"budget": budget, "seed": seed})
            print(f"[{budget}, seed {seed}] pretrained {summary['steps']} steps in {seconds:.0f} s: "
                  f"loss {summary['loss']:.3f} (unigram {summary['unigram_entropy']:.3f}), "
                  f"token accuracy {summary['token_accuracy']:.3f}", flush=True)
            for fraction in fractions:
                names = strategies if fraction == 1.0 else params.data_efficiency.strategies
                for name in names:
                    key = "any" if name in NO_PRETRAINING else budget
                    if any(r["budget"] == key and r["strategy"] == name and r["fraction"] == fraction
                           and r["seed"] == seed for r in rows):
                        continue
                    row = run_one(run_params, name, fraction, task) | {"budget": key, "seed": seed}
                    print(f"  {name} @ {fraction:.0%}: test {row['test_accuracy']:.4f} "
                          f"(validation {row['validation_accuracy']:.4f})", flush=True)
                    rows.append(row)
    return rows, budgets, minutes, pretrained


def mean_sd(values: list[float], signed: bool = False) -> str:
    """Mean ± sd over seeds; one seed prints its value alone, since "± 0.000" would read as no noise."""
    mean = f"{statistics.mean(values):{'+' if signed else ''}.3f}"
    return f"{mean} ± {statistics.stdev(values):.3f}" if len(values) > 1 else mean


def summarize(rows: list[dict], budgets: list[str], seeds: list[int]) -> tuple[str, list[dict]]:
    """Markdown tables (per budget: strategy × fraction; then break-even) and the break-even rows."""
    acc = {(r["budget"], r["strategy"], r["fraction"], r["seed"]): r["test_accuracy"] for r in rows}

    def scores(budget, strategy, fraction):
        key = lambda s: (("any" if strategy in NO_PRETRAINING else budget), strategy, fraction, s)  # noqa: E731
        return [acc[key(s)] for s in seeds if key(s) in acc]

    lines: list[str] = []
    for budget in budgets:
        lines += [f"\n### pretraining budget: {budget}\n",
                  "| strategy | labels | test accuracy | − scratch | − tfidf |", "|---|---|---|---|---|"]
        for strategy, fraction in sorted({(r["strategy"], r["fraction"]) for r in rows},
                                         key=lambda k: (-k[1], k[0])):
            mine = scores(budget, strategy, fraction)
            if not mine:
                continue
            diffs = []
            for base in NO_PRETRAINING:
                theirs = scores(budget, base, fraction)
                paired = [a - b for a, b in zip(mine, theirs)] if len(theirs) == len(mine) and base != strategy else []
                diffs.append(mean_sd(paired, signed=True) if paired else "")
            lines.append(f"| {strategy} | {fraction:.0%} | {mean_sd(mine)} | {diffs[0]} | {diffs[1]} |")
    curve = []
    for budget in budgets:
        for fraction in sorted({r["fraction"] for r in rows}):
            full, scratch = scores(budget, "full", fraction), scores(budget, "scratch", fraction)
            if full and len(full) == len(scratch):
                gain = [a - b for a, b in zip(full, scratch)]
                curve.append({"budget": budget, "fraction": fraction, "gain": statistics.mean(gain),
                              "sd": statistics.stdev(gain) if len(gain) > 1 else 0.0})
    if len(budgets) > 1:
        lines += ["\n### break-even: full − scratch, test accuracy\n", "| budget | labels | gain |", "|---|---|---|"]
        lines += [f"| {c['budget']} | {c['fraction']:.0%} | {c['gain']:+.3f} ± {c['sd']:.3f} |" for c in curve]
        for fraction in sorted({c["fraction"] for c in curve}):
            paying = [c["budget"] for c in curve if c["fraction"] == fraction and c["gain"] > 0]
            first = paying[0] if paying else "none of the budgets tried"
            lines.append(f"\nat {fraction:.0%} of labels transfer first pays at: {first}")
    return "\n".join(lines) + "\n", curve


def plot(path: Path, curve: list[dict], minutes: dict[str, float]) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for fraction in sorted({c["fraction"] for c in curve}):
        mine = [c for c in curve if c["fraction"] == fraction]
        ax.errorbar([minutes[c["budget"]] for c in mine], [c["gain"] for c in mine], yerr=[c["sd"] for c in mine],
                    marker="o", capsize=3, label=f"{fraction:.0%} of labels")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("pretraining CPU minutes (this machine)")
    ax.set_ylabel("full − scratch, test accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds, from pretrain.seed upwards")
    parser.add_argument("--pretrain-minutes", type=float, nargs="*", default=[],
                        help="pretraining budgets in minutes (default: the params' pretrain.max_steps)")
    parser.add_argument("--strategies", nargs="+", default=["scratch", "full", "lora", "head", "tfidf"],
                        help="strategies trained on all labels")
    parser.add_argument("--fractions", type=float, nargs="+", help="label fractions (default: data_efficiency's)")
    parser.add_argument("--workdir", default="bench/.transfer_gain")
    args = parser.parse_args()

    params = load_params(args.params)
    fractions = sorted(args.fractions or params.data_efficiency.fractions, reverse=True)
    seeds = [params.pretrain.seed + i for i in range(args.seeds)]
    work = enter(Path(args.workdir))
    os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "transferflow-bench")  # setup_tracking sets it by name
    setup_tracking()
    with mlflow.start_run(run_name="transfer_gain") as bench_run:
        parent = bench_run.info.run_id  # every stage run is a child of this one
        mlflow.log_params({"seeds": args.seeds, "strategies": ",".join(args.strategies),
                           "fractions": ",".join(map(str, fractions)), "params": args.params})
        rows, budgets, minutes, _ = measure(params, parent, seeds, args.strategies, fractions, args.pretrain_minutes)
        report, curve = summarize(rows, budgets, seeds)
        print(report)
        figures = {"rows": rows, "curve": curve, "minutes": minutes}
        (work / "transfer_gain.json").write_text(json.dumps(figures, indent=1))
        (work / "transfer_gain.md").write_text(report)
        if len(budgets) > 1:
            plot(work / "transfer_gain.png", curve, minutes)
        for c in curve:
            mlflow.log_metric(f"gain_full_vs_scratch_{c['fraction']:g}", c["gain"],
                              step=round(minutes[c["budget"]] * 60))
        for name in ("transfer_gain.json", "transfer_gain.md", "transfer_gain.png"):
            if (work / name).exists():
                mlflow.log_artifact(str(work / name))


if __name__ == "__main__":
    main()
