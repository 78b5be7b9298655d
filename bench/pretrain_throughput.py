"""Pretraining throughput: transferflow's pretrain stage against what a user would write, side by side.

    dvc repro tokenizer                                   # once: the prepared corpus and its tokenizer
    python bench/pretrain_throughput.py [--params params.yaml] [--hidden 256] [--steps 40]

Both train the same BERT shape on the same packed 64-token blocks of the same corpus, on this
machine, in one process, one after the other:
  (a) HF as a user would write it: `BertForMaskedLM` + `DataCollatorForLanguageModeling` + Trainer,
      run_mlm's defaults (texts grouped into blocks, dropout 0.1, fp32, the decoder on every position);
  (b) transferflow's pretrain stage, family bert: its model builder and Trainer arguments (decoder on
      the masked positions only, no dropout, bf16 where this machine runs it faster);
  (c) the same stage, family modernbert (the demo's): pre-norm, GeGLU, its native sparse prediction.
It prints real (non-pad) tokens/s, the achieved TFLOP/s of the work each does, each as a share of
this machine's matmul peak in the dtype it computes in (measured here, same run), and last
`speedup: X.XX`, the ratio b/a of tokens/s (the line before it gives c/a).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, Trainer,
                          TrainerCallback)

from tasks import pretrain
from transferflow.config import load_params
from transferflow.family import get_family
from transferflow.files import load_prepared
from transferflow.precision import use_bf16
from transferflow.training import training_arguments

WARMUP_STEPS = 5


class StepClock(TrainerCallback):
    """Seconds from the end of the warm-up steps to the end of training."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == WARMUP_STEPS:
            self.started = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self.started


def matmul_peak_tflops(bf16: bool, size: int = 2048, repeats: int = 5) -> float:
    """Best of square matmuls of a few sizes, in the dtype training computes in."""
    best = 0.0
    for n in (size // 4, size // 2, size):
        a, b = torch.randn(n, n), torch.randn(n, n)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            a @ b
            started = time.perf_counter()
            for _ in range(repeats):
                a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - started) / 1e12)
    return best


HEAD_MODULES = ("cls.", "head.", "decoder")
"""Module names of the masked-LM heads (bert: cls.*, modernbert: head.* and decoder): with sparse
prediction they run on the masked positions only."""


def train_flops_per_step(model, batch: int, length: int, predicted: float) -> float:
    """Matmul FLOPs of one training step (3x the forward): every Linear layer of the encoder and the
    attention scores on every token, the masked-LM head's Linear layers on `predicted` tokens."""
    tokens = batch * length
    linear = sum(2 * m.in_features * m.out_features * (predicted if name.startswith(HEAD_MODULES) else tokens)
                 for name, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    attention = tokens * model.config.num_hidden_layers * 4 * length * model.config.hidden_size
    return 3 * (linear + attention)


def run(model, collator, data, args) -> float:
    clock = StepClock()
    Trainer(model=model, args=args, data_collator=collator, train_dataset=data, callbacks=[clock]).train()
    return clock.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size (heads of 64, feed-forward 4x)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40, help="timed steps, after %d warm-up steps" % WARMUP_STEPS)
    opts = parser.parse_args()
    if not Path(pretrain.TOKENIZER).is_dir():
        raise SystemExit(f"{pretrain.TOKENIZER} not found: run `dvc repro tokenizer` first")

    params = load_params(opts.params)
    model_params = params.pretrain.model.model_copy(update={
        "hidden_size": opts.hidden, "num_layers": opts.layers, "num_heads": max(1, opts.hidden // 64),
        "intermediate_size": 4 * opts.hidden})
    p = params.pretrain.model_copy(update={"model": model_params, "max_steps": WARMUP_STEPS + opts.steps})
    tokenizer = AutoTokenizer.from_pretrained(pretrain.TOKENIZER)
    blocks = pretrain.pack_blocks(load_prepared(pretrain.CORPUS), tokenizer, p.model.max_length)["train"]
    batch, length = p.batch_size, p.model.max_length
    common = dict(eval_strategy="no", save_strategy="no", logging_steps=10**6, disable_tqdm=True)
    torch.manual_seed(p.seed)

    bert, modernbert = get_family("bert"), get_family("modernbert")
    stage_model, stage_collator = bert.build(p, tokenizer, p.pretraining_dropout), bert.collator(p, tokenizer)
    # (a) HF as shipped, run_mlm's defaults: the same shape with BertConfig's dropout 0.1, fp32
    user_model = BertForMaskedLM(BertConfig(**{**stage_model.config.to_dict(), "hidden_dropout_prob": 0.1,
                                               "attention_probs_dropout_prob": 0.1}))
    user_collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    user_s = run(user_model, user_collator, blocks, training_arguments(p, "/tmp/bench-a", **common))
    # (b) transferflow's stage, family bert; (c) the same stage, family modernbert (the demo's)
    bf16 = use_bf16(p.precision)
    stage_s = run(stage_model, stage_collator, blocks,
                  training_arguments(p, "/tmp/bench-b", **common, bf16=bf16))
    modern_model = modernbert.build(p, tokenizer, p.pretraining_dropout)
    modern_collator = modernbert.collator(p, tokenizer)
    modern_s = run(modern_model, modern_collator, blocks,
                   training_arguments(p, "/tmp/bench-c", **common, bf16=bf16))

    peaks = {False: matmul_peak_tflops(False)} | ({True: matmul_peak_tflops(True)} if bf16 else {})
    print(f"model H{opts.hidden} x L{opts.layers}, batch {batch} x {length} tokens, vocabulary {len(tokenizer)}, "
          f"{opts.steps} timed steps, {torch.get_num_threads()} threads")
    print("matmul peak: " + ", ".join(f"{'bf16' if k else 'fp32'} {v:.3f} TFLOP/s" for k, v in peaks.items()))
    print(f"{'setup':<44}{'dtype':>6}{'tokens/s':>10}{'TFLOP/s':>9}{'% peak':>8}")
    tokens = opts.steps * batch * length  # packed blocks: every token is real
    rates = []
    # (name, model, seconds, trains in bf16, positions the head scores per step: all, or the masked ones)
    masked = batch * length * p.mlm_probability
    for name, model, seconds, in_bf16, predicted in (
            ("(a) HF BertForMaskedLM, run_mlm defaults", user_model, user_s, False, batch * length),
            ("(b) transferflow pretrain stage, bert", stage_model, stage_s, bf16, masked),
            ("(c) transferflow pretrain stage, modernbert", modern_model, modern_s, bf16, masked)):
        tflops = opts.steps * train_flops_per_step(model, batch, length, predicted) / seconds / 1e12
        rates.append(tokens / seconds)
        print(f"{name:<44}{'bf16' if in_bf16 else 'fp32':>6}{tokens / seconds:>10.0f}{tflops:>9.3f}"
              f"{100 * tflops / peaks[in_bf16]:>7.1f}%")
    print(f"speedup (c)/(a): {rates[2] / rates[0]:.2f}")
    print(f"speedup: {rates[1] / rates[0]:.2f}")


if __name__ == "__main__":
    main()
