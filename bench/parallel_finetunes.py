"""Parallel fine-tunes: the flow's wall time with `flow.parallel_finetunes` N against 1, in one run.

    python bench/parallel_finetunes.py [--params params.yaml] [--workers 2] [--strategies scratch full lora head]

In its own work folder it runs the flow once to fill the cache (prepare, tokenizer and a short
pretraining, since fine-tuning speed does not depend on how well the model learned), then times the
flow twice with every fine-tune forced to train again (their outputs deleted, so the cache does not
trust them): once one fine-tune at a time, once N at a time. Everything upstream is a cache hit both
times; evaluate and register run both times. It prints both wall times and, last, `ratio: X.XX`
(sequential / parallel: above 1 is a gain).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import yaml


def timed_flow(params_file: Path, workers: int) -> float:
    from flows.pipeline import pipeline

    data = yaml.safe_load(params_file.read_text())
    data["flow"] = {"parallel_finetunes": workers}
    params_file.write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.rmtree("artifacts/finetune", ignore_errors=True)
    started = time.perf_counter()
    pipeline(params_file=str(params_file))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=["scratch", "full", "lora", "head"])
    parser.add_argument("--pretrain-steps", type=int, default=100)
    parser.add_argument("--workdir", default="bench/.parallel_finetunes")
    args = parser.parse_args()
    data = yaml.safe_load(Path(args.params).read_text())
    data["finetune"]["strategies"] = args.strategies
    data["pretrain"] |= {"max_steps": args.pretrain_steps, "eval_steps": args.pretrain_steps}
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "data").exists():
        (work / "data").symlink_to(Path("data").resolve())
    params_file = work / "params.yaml"
    params_file.write_text(yaml.safe_dump(data, sort_keys=False))
    os.chdir(work)
    from flows.pipeline import pipeline

    pipeline(params_file=str(params_file))  # fills the cache upstream of fine-tuning
    sequential = timed_flow(params_file, 1)
    parallel = timed_flow(params_file, args.workers)
    print(f"{len(args.strategies)} fine-tunes ({', '.join(args.strategies)}), {os.cpu_count()} cores")
    print(f"one at a time: {sequential:.0f} s")
    print(f"{args.workers} at a time: {parallel:.0f} s")
    print(f"ratio: {sequential / parallel:.2f}")


if __name__ == "__main__":
    main()
