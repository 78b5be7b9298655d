"""tokenizer: train the model family's tokenizer on the pretraining corpus.

    python -m tasks.tokenizer [--params params.yaml]

Each family gets the tokenizer it was designed with (its record's `tokenizer`, transferflow/tokenizers.py).
Saved as a `PreTrainedTokenizerFast` folder that `AutoTokenizer.from_pretrained` loads. With
pretrain.init_from the checkpoint's own tokenizer is saved instead.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from transformers import AutoTokenizer

from transferflow.checkpoint import checkpoint_inputs, load_from_checkpoint, starting_checkpoint
from transferflow.config import Params
from transferflow.family import get_family
from transferflow.files import atomic_dir, load_prepared
from transferflow.stage import StageSpec, stage_cli
from transferflow.tracking import stage_run

OUT = Path("artifacts/tokenizer")
CORPUS = Path("artifacts/prepare/corpus")
STAGE = StageSpec(
    name="tokenizer",
    params=("tokenizer", "pretrain.family", "pretrain.model.max_length", "pretrain.init_from"),
    deps=(str(CORPUS),),
    outs=(str(OUT),),
    optional_inputs=checkpoint_inputs,
    loads=("transferflow/families",),
)


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Train the family's tokenizer (Family.tokenizer) on the prepared corpus, or take the checkpoint's
    (pretrain.init_from): its embeddings are indexed by that vocabulary."""
    p, init_from = params.tokenizer, starting_checkpoint(params.pretrain.init_from)
    logged = p.model_dump() | {"family": params.pretrain.family, "init_from": init_from}
    with stage_run("tokenizer", logged, parent_run_id):
        corpus = load_prepared(CORPUS)["train"]
        if init_from:
            tokenizer = load_from_checkpoint(AutoTokenizer.from_pretrained, init_from)
        else:
            tokenizer = get_family(params.pretrain.family).tokenizer(
                corpus["text"], p, model_max_length=params.pretrain.model.max_length)
        with atomic_dir(OUT) as tmp:
            tokenizer.save_pretrained(tmp)
        sample = corpus["text"][: min(1000, len(corpus))]
        words = sum(len(t.split()) for t in sample)
        # whole lines, only counted: verbose=False drops the longer-than-the-model warning
        pieces = sum(len(ids) for ids in tokenizer(sample, add_special_tokens=False, verbose=False)["input_ids"])
        summary = {"vocab_size": len(tokenizer), "pieces_per_word": pieces / max(words, 1)}
        mlflow.log_metrics(summary)
    return summary


if __name__ == "__main__":
    stage_cli(main)
