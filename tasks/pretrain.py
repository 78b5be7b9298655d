"""pretrain: language-model pretraining of the chosen family, from scratch or from a checkpoint.

    python -m tasks.pretrain [--params params.yaml]

bert: an encoder trained with masked LM, its decoder run on the masked positions only
(transferflow/masked_lm.py); modernbert: the same objective on ModernBERT, whose decoder is sparse
natively; gpt: a decoder trained with causal LM; t5: an encoder-decoder trained
with span corruption (transferflow/span_corruption.py). Every family trains on packed blocks of text
(no padding), without dropout (the saved model carries pretrain.model.dropout for fine-tuning), with
SDPA attention, and in bf16 where this machine runs it faster (transferflow/precision.py). All three
report held-out perplexity and token accuracy over the tokens they predict, beside the corpus's
unigram entropy: a loss at that level means the model has learned no context.

With pretrain.init_from the stage starts from a checkpoint (a local folder or a hub id) instead of
random weights and continues pretraining it on the prepared corpus (DAPT/TAPT), or with max_steps 0
only imports it.

Checkpoints go to checkpoints/pretrain every eval_steps; a re-run with the same params resumes from
the last one. The finished model (safetensors, with its tokenizer) is written to artifacts/pretrain
in one rename, so a crash never leaves a half-written model for fine-tuning to read.

Data-parallel on N processes (DDP: gloo on CPU, NCCL on GPUs), pretrain.batch_size per process:

    torchrun --nproc_per_node N -m tasks.pretrain [--params params.yaml]

Rank 0 alone logs to MLflow and writes the model, the metrics and the plots; the others wait for it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import datasets
import mlflow
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from transformers import AutoConfig, AutoTokenizer, Trainer, set_seed

from transferflow.checkpoint import PREVIOUS, checkpoint_inputs, load_from_checkpoint, starting_checkpoint
from transferflow.config import Params, PretrainParams
from transferflow.errors import ParamsError, TrainingError
from transferflow.files import atomic_dir, load_prepared, write_json
from transferflow.family import Family, get_family
from transferflow.metrics import load_metric
from transferflow.precision import use_bf16
from transferflow.stage import REPO, StageSpec, stage_cli
from transferflow.tracking import stage_run
from transferflow.training import count_parameters, on_main_process, resume_point, train, training_arguments

OUT = Path("artifacts/pretrain")
CHECKPOINTS = Path("checkpoints/pretrain")
CORPUS = Path("artifacts/prepare/corpus")
TOKENIZER = Path("artifacts/tokenizer")
STAGE = StageSpec(
    name="pretrain",
    params=("pretrain",),
    deps=(str(CORPUS), str(TOKENIZER)),
    outs=(str(OUT),),
    optional_inputs=checkpoint_inputs,
    metrics=("metrics/pretrain.json",),
    plots=("plots/pretrain.json",),
    plot_props={"plots/pretrain.json": {"x": "step", "y": "loss"}},
    loads=("transferflow/families",),
)


def pack_blocks(corpus: datasets.DatasetDict, tokenizer, block: int) -> datasets.DatasetDict:
    """Lines joined by an end token (</s>, <|endoftext|>, or bert's [SEP]) and cut into blocks of
    `block` tokens, each bert block opening with [CLS]: no padding, and every position sees text
    (RoBERTa's FULL-SENTENCES packing; GPT and T5 were trained so). Hand-written like transformers'
    run_clm example (`group_texts`), which is a script, not a library function."""
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    start = [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None else []
    length = block - len(start)

    def encode(batch):
        # Whole lines, longer than the model takes: verbose=False drops the warning, the blocks fit.
        ids = [t + [end] for t in tokenizer(batch["text"], add_special_tokens=False, verbose=False)["input_ids"]]
        flat = [token for line in ids for token in line]
        return {"input_ids": [start + flat[i:i + length] for i in range(0, len(flat) - length + 1, length)]}

    return corpus.map(encode, batched=True, batch_size=2000, remove_columns=["text"])


def from_checkpoint(p: PretrainParams, family: Family, dropout: float):
    """The checkpoint at p.init_from, with pretraining's dropout, loaded into the family's objective."""
    config = load_from_checkpoint(AutoConfig.from_pretrained, p.init_from)
    if family.model_types and config.model_type not in family.model_types:
        raise ParamsError(f"pretrain.init_from {p.init_from} holds a {config.model_type} model; "
                          f"pretrain.family {p.family} needs {' or '.join(family.model_types)}")
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if positions and p.model.max_length > positions:
        raise ParamsError(f"pretrain.model.max_length ({p.model.max_length}) exceeds the {positions} positions "
                          f"of the checkpoint {p.init_from}")
    _set_dropout(config, family, dropout)
    if hasattr(config, "sparse_prediction"):
        config.sparse_prediction = True  # decode the masked positions only, as a model built here does
    return family.checkpoint_class().from_pretrained(p.init_from, config=config, attn_implementation="sdpa")


def _set_dropout(config, family: Family, dropout: float) -> None:
    """Pretraining runs with pretrain.pretraining_dropout; the saved model carries pretrain.model.dropout
    for fine-tuning."""
    for field in family.dropout_fields:
        if hasattr(config, field):  # a gpt-family checkpoint may be any causal LM, with fields of its own
            setattr(config, field, dropout)


def unigram_entropy(blocks: datasets.Dataset, special_ids: list[int]) -> float:
    """Entropy (nats) of the corpus's token frequencies, special tokens left out: the loss of a model
    that predicts each token without looking at its context."""
    counts = torch.bincount(torch.tensor([t for ids in blocks["input_ids"] for t in ids]))
    counts[[i for i in special_ids if i < len(counts)]] = 0
    probs = counts[counts > 0] / counts.sum()
    return float(-(probs * probs.log()).sum())


@torch.no_grad()
def held_out_scores(model, dataset, collator, batch_size: int, seed: int, prediction: str) -> dict[str, float]:
    """Perplexity and accuracy over the tokens the objective predicts (masked, next or hidden-span
    tokens), with masks drawn from a fixed seed so runs compare exactly. `prediction` is where the
    objective's logits sit (Family.prediction)."""
    model.eval()
    nll: list[float] = []
    hits = 0
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collator):
            batch = {k: v.to(model.device) for k, v in batch.items()}
            labels = batch["labels"]
            if prediction == "sparse":  # sparse decoders: a row per labelled position
                logits, labels = model(**batch).logits, labels[labels != -100]
            elif prediction == "shifted":  # causal LM: position t predicts token t + 1
                batch.pop("labels")
                logits, labels = model(**batch).logits[:, :-1], labels[:, 1:]
            else:
                logits = model(**batch).logits
            logits, labels = logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1)
            keep = labels != -100
            nll.extend(F.cross_entropy(logits[keep], labels[keep], reduction="none").tolist())
            hits += int((logits[keep].argmax(-1) == labels[keep]).sum())
    return load_metric("perplexity").compute(nll=nll) | {"token_accuracy": hits / max(len(nll), 1)}


def _resume_point(p: PretrainParams) -> str | None:
    """Resume only from checkpoints written with the same params and inputs; otherwise start clean."""
    code = [REPO / dep for dep in STAGE.code]  # the stage's code deps, the family records included
    start = [Path(p.init_from)] if p.init_from and Path(p.init_from).is_dir() else []  # previous changes nightly
    return resume_point(CHECKPOINTS, p.model_dump(mode="json"), [CORPUS, TOKENIZER, *code, *start])


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Pretrain the family's model with its objective on the prepared corpus."""
    p = params.pretrain
    with stage_run("pretrain", p.model_dump(), parent_run_id):
        set_seed(p.seed)
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
        corpus = load_prepared(CORPUS)
        if p.max_eval_lines and len(corpus["validation"]) > p.max_eval_lines:
            corpus["validation"] = corpus["validation"].select(range(p.max_eval_lines))
        p = p.model_copy(update={"init_from": starting_checkpoint(p.init_from)})  # previous: a folder, or none yet
        family = get_family(p.family)
        if p.init_from:
            model = from_checkpoint(p, family, p.pretraining_dropout)
        else:
            model = family.build(p, tokenizer, p.pretraining_dropout)
        collator = family.collator(p, tokenizer)
        data = pack_blocks(corpus, tokenizer, p.model.max_length)
        if not len(data["train"]) or not len(data["validation"]):
            raise ValueError(f"the corpus gives no {p.model.max_length}-token block for pretraining: "
                             "use more corpus lines or a smaller pretrain.model.max_length")
        resume = _resume_point(p)
        bf16 = on_main_process(lambda: use_bf16(p.precision))  # one probe decides for every process
        # prediction_loss_only: evaluation needs the loss alone, not every position's logits kept
        args = training_arguments(p, str(CHECKPOINTS), bf16=bf16, prediction_loss_only=True)
        started = time.perf_counter()
        trainer, result = train(model, args, data["train"], collator, eval_data=data["validation"], perplexity=True,
                                resume=resume)
        seconds = time.perf_counter() - started
        steps = result.global_step if result else 0
        # Every process scores the whole held-out set alike (same weights, same seed), with no collective
        # op: a diverged run then stops on every process, none left waiting for the others.
        scores = held_out_scores(trainer.model, data["validation"], collator, p.batch_size * 2, p.seed, family.prediction)
        if not math.isfinite(scores["mean_nll"]):  # nothing half-trained is saved as the pretrained model
            raise TrainingError(f"held-out loss is {scores['mean_nll']} after {steps} steps "
                                f"(learning rate {p.learning_rate:g}): training diverged; lower the learning rate")
        _set_dropout(trainer.model.config, family, p.model.dropout)  # fine-tuning gets its dropout back
        tokens = len(data["train"]) * p.model.max_length
        summary = {
            "perplexity": scores["perplexity"], "loss": scores["mean_nll"],
            "unigram_entropy": unigram_entropy(data["train"], tokenizer.all_special_ids),
            "token_accuracy": scores["token_accuracy"], "train_loss": result.training_loss if result else None,
            "steps": steps, "parameters": count_parameters(trainer.model)[1], "train_seconds": seconds,
            "tokens_per_second": steps * p.batch_size * args.world_size * p.model.max_length / seconds,
            "corpus_tokens": tokens, "bf16": bf16, "resumed": resume is not None,
            "init_from": p.init_from or "random init",
        }
        if trainer.is_world_process_zero():  # one writer, as Trainer's own checkpoints have
            _write_outputs(trainer, tokenizer, summary)
        # The other processes return once the model is on disk, so that whatever follows the launch reads it whole.
        trainer.accelerator.wait_for_everyone()
    return summary


def _write_outputs(trainer: Trainer, tokenizer, summary: dict) -> None:
    """The pretrained model, the stage's metrics and loss curve, and their MLflow figures."""
    for folder in (OUT, PREVIOUS):  # PREVIOUS: where the next `init_from: previous` starts
        with atomic_dir(folder) as tmp:
            trainer.model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
    write_json(STAGE.metrics[0], summary)
    # Under DDP, Trainer logs each step's loss averaged over the processes
    curve = [{"step": e["step"], "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e]
    write_json(STAGE.plots[0], curve)
    mlflow.log_metrics({k: summary[k] for k in ("perplexity", "loss", "unigram_entropy", "token_accuracy",
                                                 "train_seconds", "tokens_per_second")})


if __name__ == "__main__":
    stage_cli(main)
