"""pretrain: language-model pretraining from scratch of the chosen family (no hub weights).

    python -m tasks.pretrain [--params params.yaml]

bert: an encoder trained with masked LM; gpt: a decoder trained with causal LM on packed blocks of
text; t5: an encoder-decoder trained with span corruption (transferflow/span_corruption.py). All
three report held-out perplexity over the tokens they predict.

Checkpoints go to checkpoints/pretrain every eval_steps; a re-run with the same params resumes from
the last one. The finished model (safetensors, with its tokenizer) is written to artifacts/pretrain
in one rename, so a crash never leaves a half-written model for fine-tuning to read.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import datasets
import mlflow
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling,
                          GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration, Trainer, set_seed)
from transformers.trainer_utils import get_last_checkpoint

from transferflow.config import Params, PretrainParams
from transferflow.files import atomic_dir, fingerprint, load_prepared, write_json
from transferflow.metrics import load_metric
from transferflow import span_corruption as span_corruption_module
from transferflow.span_corruption import SpanCorruptionCollator
from transferflow.stage import StageSpec, stage_cli
from transferflow.tracking import stage_run
from transferflow.training import MlflowMetrics, count_parameters, training_arguments

OUT = Path("artifacts/pretrain")
CHECKPOINTS = Path("checkpoints/pretrain")
CORPUS = Path("artifacts/prepare/corpus")
TOKENIZER = Path("artifacts/tokenizer")
STAGE = StageSpec(
    name="pretrain",
    params=("pretrain",),
    deps=("tasks/pretrain.py", "transferflow/metrics", "transferflow/training.py", "transferflow/span_corruption.py",
          str(CORPUS), str(TOKENIZER)),
    outs=(str(OUT),),
    metrics=("metrics/pretrain.json",),
    plots=("plots/pretrain.json",),
)


def tokenize_lines(corpus: datasets.DatasetDict, tokenizer, max_length: int) -> datasets.DatasetDict:
    """One example per corpus line, truncated (bert: each line is a [CLS] ... [SEP] sentence)."""
    def encode(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length, return_special_tokens_mask=True)

    return corpus.map(encode, batched=True, remove_columns=["text"])


def pack_blocks(corpus: datasets.DatasetDict, tokenizer, block: int) -> datasets.DatasetDict:
    """Lines joined by </s> (or <|endoftext|>) and cut into blocks of `block` tokens, as GPT and T5 were
    trained: no padding, and every position sees text. Hand-written like transformers' run_clm example
    (`group_texts`), which is a script, not a library function."""
    def encode(batch):
        ids = [t + [tokenizer.eos_token_id] for t in tokenizer(batch["text"], add_special_tokens=False)["input_ids"]]
        flat = [token for line in ids for token in line]
        return {"input_ids": [flat[i:i + block] for i in range(0, len(flat) - block + 1, block)]}

    return corpus.map(encode, batched=True, batch_size=2000, remove_columns=["text"])


def masked_lm(p: PretrainParams, tokenizer, corpus: datasets.DatasetDict):
    m = p.model
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
        max_position_embeddings=m.max_length, hidden_dropout_prob=m.dropout,
        attention_probs_dropout_prob=m.dropout, pad_token_id=tokenizer.pad_token_id,
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=p.mlm_probability)
    return BertForMaskedLM(config), tokenize_lines(corpus, tokenizer, m.max_length), collator


def causal_lm(p: PretrainParams, tokenizer, corpus: datasets.DatasetDict):
    m = p.model
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=m.hidden_size, n_layer=m.num_layers, n_head=m.num_heads,
        n_inner=m.intermediate_size, n_positions=m.max_length, resid_pdrop=m.dropout, embd_pdrop=m.dropout,
        attn_pdrop=m.dropout, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)  # labels = inputs; the model shifts
    return GPT2LMHeadModel(config), pack_blocks(corpus, tokenizer, m.max_length), collator


def span_corruption(p: PretrainParams, tokenizer, corpus: datasets.DatasetDict):
    m = p.model
    config = T5Config(
        vocab_size=len(tokenizer), d_model=m.hidden_size, d_kv=m.hidden_size // m.num_heads, d_ff=m.intermediate_size,
        num_layers=m.num_layers, num_decoder_layers=m.num_layers, num_heads=m.num_heads, dropout_rate=m.dropout,
        feed_forward_proj="gated-gelu", pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,  # tied embeddings: T5 then scales logits by d_model**-0.5
    )
    collator = SpanCorruptionCollator(tokenizer, p.noise_density, p.mean_span_length)
    return T5ForConditionalGeneration(config), pack_blocks(corpus, tokenizer, m.max_length), collator


OBJECTIVES = {"bert": masked_lm, "gpt": causal_lm, "t5": span_corruption}
"""Model and objective of each family: (params, tokenizer, corpus) -> (model, tokenized corpus, collator)."""


@torch.no_grad()
def held_out_perplexity(model, dataset, collator, batch_size: int, seed: int) -> dict[str, float]:
    """Perplexity over the tokens the objective predicts (masked, next or hidden-span tokens), with
    masks drawn from a fixed seed so runs compare exactly."""
    model.eval()
    shift = not (model.config.is_encoder_decoder or model.config.model_type == "bert")  # causal LM
    nll: list[float] = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
            batch = {k: v.to(model.device) for k, v in batch.items()}
            labels = batch["labels"] if model.config.is_encoder_decoder else batch.pop("labels")
            logits = model(**batch).logits
            if shift:
                logits, labels = logits[:, :-1], labels[:, 1:]
            losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none", ignore_index=-100)
            nll.extend(losses[labels.flatten() != -100].tolist())
    return load_metric("perplexity").compute(nll=nll)


def _resume_point(p: PretrainParams) -> bool:
    """Resume only from checkpoints written with the same params and inputs; otherwise start clean."""
    stamp = hashlib.sha256(json.dumps(p.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    stamp += fingerprint([CORPUS, TOKENIZER, Path(__file__), Path(span_corruption_module.__file__)])  # + objective code
    stamp_file = CHECKPOINTS / "params.sha256"
    if stamp_file.is_file() and stamp_file.read_text() == stamp and get_last_checkpoint(str(CHECKPOINTS)):
        return True
    shutil.rmtree(CHECKPOINTS, ignore_errors=True)
    CHECKPOINTS.mkdir(parents=True)
    stamp_file.write_text(stamp)
    return False


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Pretrain the family's model with its objective on the prepared corpus."""
    p = params.pretrain
    with stage_run("pretrain", p.model_dump(), parent_run_id):
        set_seed(p.seed)
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
        corpus = load_prepared(CORPUS)
        if p.max_eval_lines and len(corpus["validation"]) > p.max_eval_lines:
            corpus["validation"] = corpus["validation"].select(range(p.max_eval_lines))
        model, data, collator = OBJECTIVES[p.family](p, tokenizer, corpus)
        if not len(data["train"]) or not len(data["validation"]):
            raise ValueError(f"the corpus gives no {p.model.max_length}-token block for pretraining: "
                             "use more corpus lines or a smaller pretrain.model.max_length")
        resume = _resume_point(p)
        trainer = Trainer(
            model=model, args=training_arguments(p, str(CHECKPOINTS)), data_collator=collator,
            train_dataset=data["train"], eval_dataset=data["validation"],
            callbacks=[MlflowMetrics(perplexity=True)],
        )
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume or None)
        seconds = time.perf_counter() - started
        scores = held_out_perplexity(trainer.model, data["validation"], collator, p.batch_size * 2, p.seed)
        with atomic_dir(OUT) as tmp:
            trainer.model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        summary = {
            "perplexity": scores["perplexity"], "train_loss": result.training_loss,
            "steps": result.global_step, "parameters": count_parameters(trainer.model)[1],
            "train_seconds": seconds, "resumed": resume,
        }
        write_json(STAGE.metrics[0], summary)
        curve = [{"step": e["step"], "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e]
        write_json(STAGE.plots[0], curve)
        mlflow.log_metrics({"perplexity": scores["perplexity"], "train_seconds": seconds})
    return summary


if __name__ == "__main__":
    stage_cli(main)
