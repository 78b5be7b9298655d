"""pretrain: masked-LM pretraining of a BERT-style encoder built from params (no hub weights).

    python -m tasks.pretrain [--params params.yaml]

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
                          Trainer, set_seed)
from transformers.trainer_utils import get_last_checkpoint

from transferflow.config import Params, PretrainParams
from transferflow.data import load_prepared
from transferflow.files import atomic_dir, fingerprint, write_json
from transferflow.metrics import load_metric
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
    deps=("tasks/pretrain.py", str(CORPUS), str(TOKENIZER)),
    outs=(str(OUT),),
    metrics=("metrics/pretrain.json",),
    plots=("plots/pretrain.json",),
)


def build_encoder(p: PretrainParams, tokenizer) -> BertForMaskedLM:
    m = p.model
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
        max_position_embeddings=m.max_length, hidden_dropout_prob=m.dropout,
        attention_probs_dropout_prob=m.dropout, pad_token_id=tokenizer.pad_token_id,
    )
    return BertForMaskedLM(config)


def tokenize_corpus(corpus: datasets.DatasetDict, tokenizer, max_length: int) -> datasets.DatasetDict:
    def encode(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length, return_special_tokens_mask=True)

    return corpus.map(encode, batched=True, remove_columns=["text"])


@torch.no_grad()
def masked_lm_perplexity(model, dataset, collator, batch_size: int, seed: int) -> dict[str, float]:
    """Perplexity over masked tokens, with masks drawn from a fixed seed so runs compare exactly."""
    model.eval()
    nll: list[float] = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
            batch = {k: v.to(model.device) for k, v in batch.items()}
            labels = batch.pop("labels")
            logits = model(**batch).logits
            losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none", ignore_index=-100)
            nll.extend(losses[labels.flatten() != -100].tolist())
    return load_metric("perplexity").compute(nll=nll)


def _resume_point(p: PretrainParams) -> bool:
    """Resume only from checkpoints written with the same params and inputs; otherwise start clean."""
    stamp = hashlib.sha256(json.dumps(p.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    stamp += fingerprint([CORPUS, TOKENIZER])
    stamp_file = CHECKPOINTS / "params.sha256"
    if stamp_file.is_file() and stamp_file.read_text() == stamp and get_last_checkpoint(str(CHECKPOINTS)):
        return True
    shutil.rmtree(CHECKPOINTS, ignore_errors=True)
    CHECKPOINTS.mkdir(parents=True)
    stamp_file.write_text(stamp)
    return False


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Pretrain the encoder with masked-LM on the prepared corpus."""
    p = params.pretrain
    with stage_run("pretrain", p.model_dump(), parent_run_id):
        set_seed(p.seed)
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
        corpus = load_prepared(CORPUS)
        if p.max_eval_lines and len(corpus["validation"]) > p.max_eval_lines:
            corpus["validation"] = corpus["validation"].select(range(p.max_eval_lines))
        data = tokenize_corpus(corpus, tokenizer, p.model.max_length)
        model = build_encoder(p, tokenizer)
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=p.mlm_probability)
        resume = _resume_point(p)
        trainer = Trainer(
            model=model, args=training_arguments(p, str(CHECKPOINTS)), data_collator=collator,
            train_dataset=data["train"], eval_dataset=data["validation"],
            callbacks=[MlflowMetrics(perplexity=True)],
        )
        started = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume or None)
        seconds = time.perf_counter() - started
        scores = masked_lm_perplexity(trainer.model, data["validation"], collator, p.batch_size * 2, p.seed)
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
