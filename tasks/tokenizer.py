"""tokenizer: train the model family's tokenizer on the pretraining corpus.

    python -m tasks.tokenizer [--params params.yaml]

Each family gets the tokenizer it was designed with, trained with `tokenizers`:
bert WordPiece (BERT's normaliser and pre-tokeniser; modernbert the same without segment ids), gpt
byte-level BPE (GPT-2: every byte string is encodable, no unknown token), t5 Unigram with
`<extra_id_N>` sentinels (T5's SentencePiece scheme).
Saved as a `PreTrainedTokenizerFast` folder that `AutoTokenizer.from_pretrained` loads. With
pretrain.init_from the checkpoint's own tokenizer is saved instead.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from transferflow.checkpoint import checkpoint_inputs, load_from_checkpoint, starting_checkpoint
from transferflow.config import Params, TokenizerParams
from transferflow.files import atomic_dir, load_prepared
from transferflow.stage import StageSpec, stage_cli
from transferflow.tracking import stage_run

OUT = Path("artifacts/tokenizer")
CORPUS = Path("artifacts/prepare/corpus")
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
GPT_EOS, GPT_PAD = "<|endoftext|>", "<pad>"
T5_SENTINELS = [f"<extra_id_{i}>" for i in range(100)]  # T5's 100 span-corruption placeholders
STAGE = StageSpec(
    name="tokenizer",
    params=("tokenizer", "pretrain.family", "pretrain.model.max_length", "pretrain.init_from"),
    deps=(str(CORPUS),),
    outs=(str(OUT),),
    optional_inputs=checkpoint_inputs,
)


def wordpiece(texts, p: TokenizerParams, model_max_length: int = 512,
              model_input_names: tuple[str, ...] = ("input_ids", "token_type_ids", "attention_mask")
              ) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=p.lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=p.vocab_size, min_frequency=p.min_frequency,
                                        special_tokens=SPECIAL_TOKENS)
    # Not bit-reproducible: the trainer numbers its `##` pieces in hash-map order, which breaks ties
    # between equal-count merges differently per process (huggingface/tokenizers#1794, fix pending in
    # #2066). Two runs give slightly different vocabularies; DVC's cache keeps the one a repro made.
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=model_max_length,
        model_input_names=list(model_input_names),
    )


def wordpiece_without_segments(texts, p: TokenizerParams, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """bert's WordPiece without token_type_ids: ModernBERT has no segment embeddings, and its forward
    refuses the argument."""
    return wordpiece(texts, p, model_max_length, model_input_names=("input_ids", "attention_mask"))


def byte_level_bpe(texts, p: TokenizerParams, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    if p.lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=p.vocab_size, min_frequency=p.min_frequency,
                                  special_tokens=[GPT_EOS, GPT_PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    # No post-processor: a causal LM sees text as is; pretraining appends <|endoftext|> between lines.
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=GPT_EOS, eos_token=GPT_EOS, unk_token=GPT_EOS,
                                   pad_token=GPT_PAD, model_max_length=model_max_length)


def unigram_with_sentinels(texts, p: TokenizerParams, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.Unigram())
    steps = [normalizers.NFKC(), normalizers.Lowercase()] if p.lowercase else [normalizers.NFKC()]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=p.vocab_size, unk_token="<unk>",
                                      special_tokens=["<pad>", "</s>", "<unk>", *T5_SENTINELS])
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   additional_special_tokens=T5_SENTINELS, model_max_length=model_max_length)


TRAINERS = {"bert": wordpiece, "modernbert": wordpiece_without_segments, "gpt": byte_level_bpe,
            "t5": unigram_with_sentinels}
"""Tokenizer of each model family (pretrain.family)."""


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Train the family's tokenizer (TRAINERS) on the prepared corpus, or take the checkpoint's
    (pretrain.init_from): its embeddings are indexed by that vocabulary."""
    p, init_from = params.tokenizer, starting_checkpoint(params.pretrain.init_from)
    logged = p.model_dump() | {"family": params.pretrain.family, "init_from": init_from}
    with stage_run("tokenizer", logged, parent_run_id):
        corpus = load_prepared(CORPUS)["train"]
        if init_from:
            tokenizer = load_from_checkpoint(AutoTokenizer.from_pretrained, init_from)
        else:
            tokenizer = TRAINERS[params.pretrain.family](corpus["text"], p,
                                                         model_max_length=params.pretrain.model.max_length)
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
