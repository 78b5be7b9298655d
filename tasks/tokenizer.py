"""tokenizer: train a WordPiece tokenizer on the pretraining corpus.

    python -m tasks.tokenizer [--params params.yaml]

Trained with `tokenizers` (BERT's normaliser and pre-tokeniser), saved as a
`PreTrainedTokenizerFast` folder that `AutoTokenizer.from_pretrained` loads.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from transferflow.config import Params, TokenizerParams
from transferflow.data import load_prepared
from transferflow.files import atomic_dir
from transferflow.stage import StageSpec, stage_cli
from transferflow.tracking import stage_run

OUT = Path("artifacts/tokenizer")
CORPUS = Path("artifacts/prepare/corpus")
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
STAGE = StageSpec(
    name="tokenizer",
    params=("tokenizer",),
    deps=("tasks/tokenizer.py", str(CORPUS)),
    outs=(str(OUT),),
)


def train_tokenizer(texts, p: TokenizerParams, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=p.lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=p.vocab_size, min_frequency=p.min_frequency,
                                        special_tokens=SPECIAL_TOKENS)
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=model_max_length,
    )


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Train the WordPiece tokenizer on the prepared corpus."""
    p = params.tokenizer
    with stage_run("tokenizer", p.model_dump(), parent_run_id):
        corpus = load_prepared(CORPUS)["train"]
        tokenizer = train_tokenizer(corpus["text"], p, model_max_length=params.pretrain.model.max_length)
        with atomic_dir(OUT) as tmp:
            tokenizer.save_pretrained(tmp)
        sample = corpus["text"][: min(1000, len(corpus))]
        words = sum(len(t.split()) for t in sample)
        pieces = sum(len(ids) - 2 for ids in tokenizer(sample)["input_ids"])
        summary = {"vocab_size": len(tokenizer), "pieces_per_word": pieces / max(words, 1)}
        mlflow.log_metrics(summary)
    return summary


if __name__ == "__main__":
    stage_cli(main)
