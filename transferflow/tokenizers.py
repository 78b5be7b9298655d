"""The tokenizers the families are designed with, trained with `tokenizers` on the pretraining corpus:
WordPiece (BERT's normaliser and pre-tokeniser; without segment ids for ModernBERT), byte-level BPE
(GPT-2: every byte string is encodable, no unknown token), Unigram with `<extra_id_N>` sentinels (T5's
SentencePiece scheme). Each returns a `PreTrainedTokenizerFast` that `AutoTokenizer.from_pretrained`
loads once saved; a family record (transferflow/families/) names its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

if TYPE_CHECKING:
    from transferflow.config import TokenizerParams

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
GPT_EOS, GPT_PAD = "<|endoftext|>", "<pad>"
T5_SENTINELS = [f"<extra_id_{i}>" for i in range(100)]  # T5's 100 span-corruption placeholders


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
