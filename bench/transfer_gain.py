"""How much does transfer buy? Every strategy of one pipeline run against the baselines, side by side.

    python bench/transfer_gain.py                       # the last run's leaderboard
    python bench/transfer_gain.py --run params.yaml     # run the pipeline first (Prefect flow)

All figures come from one run on the same data, so the ratios compare like with like: test accuracy
over the `scratch` baseline (random init, no transfer) and over `tfidf` (classical, no network) when
it is on the leaderboard, and train seconds over scratch's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

LEADERBOARD = Path("artifacts/evaluate/leaderboard.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", metavar="PARAMS", help="run `transferflow run --params PARAMS` first")
    args = parser.parse_args()
    if args.run:
        subprocess.run(["transferflow", "run", "--params", args.run], check=True)
    if not LEADERBOARD.is_file():
        sys.exit(f"{LEADERBOARD} not found: run the pipeline first (or pass --run params.yaml)")
    rows = {r["strategy"]: r for r in json.loads(LEADERBOARD.read_text())}
    baselines = [b for b in ("scratch", "tfidf") if b in rows]
    header = f"{'strategy':<14}{'val acc':>9}{'test acc':>9}" + "".join(f"{'÷ ' + b:>11}" for b in baselines)
    print(header + f"{'train s':>10}{'÷ scratch s':>13}")
    for name, r in rows.items():
        ratios = "".join(f"{r['test_accuracy'] / rows[b]['test_accuracy']:>11.3f}" for b in baselines)
        seconds = r.get("train_seconds") or 0.0
        base_s = rows.get("scratch", {}).get("train_seconds") or float("nan")
        print(f"{name:<14}{r['validation_accuracy']:>9.4f}{r['test_accuracy']:>9.4f}{ratios}"
              f"{seconds:>10.1f}{seconds / base_s:>13.2f}")


if __name__ == "__main__":
    main()
