"""t5: a T5 encoder-decoder (Unigram with sentinels), pretrained with span corruption
(transferflow/span_corruption.py); fine-tuned text-to-text, generating the label's word
(transferflow/heads.py:TextToTextHead)."""

from __future__ import annotations

from transferflow.family import AdapterLayout, Family, register


def tokenizer(texts, p, model_max_length: int = 512):
    from transferflow.tokenizers import unigram_with_sentinels

    return unigram_with_sentinels(texts, p, model_max_length)


def build(p, tokenizer, dropout: float):
    from transformers import T5Config, T5ForConditionalGeneration

    m = p.model
    config = T5Config(
        vocab_size=len(tokenizer), d_model=m.hidden_size, d_kv=m.hidden_size // m.num_heads, d_ff=m.intermediate_size,
        num_layers=m.num_layers, num_decoder_layers=m.num_layers, num_heads=m.num_heads, dropout_rate=dropout,
        feed_forward_proj="gated-gelu", pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,  # tied embeddings: T5 then scales logits by d_model**-0.5
        attn_implementation="sdpa",
    )
    return T5ForConditionalGeneration(config)


def collator(p, tokenizer):
    from transferflow.span_corruption import SpanCorruptionCollator

    return SpanCorruptionCollator(tokenizer, p.noise_density, p.mean_span_length)


def checkpoint_class():
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM


register(Family(
    name="t5", architecture="encoder-decoder", objective="span-corruption", tokenizer=tokenizer, build=build, collator=collator,
    checkpoint_class=checkpoint_class, model_types=("t5",), prediction="dense", relative_positions=True,
    dropout_fields=("dropout_rate",),
    layout=AdapterLayout(lora_targets=("q", "v")),  # T5's attention query and value projections
    heads={"classification": "text_to_text"},
))
