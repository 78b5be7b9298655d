"""bert: a post-LN BERT encoder (WordPiece, segment ids), pretrained with masked LM, its decoder run on
the masked positions only (transferflow/masked_lm.py)."""

from __future__ import annotations

from transferflow.family import AdapterLayout, Family, register


def tokenizer(texts, p, model_max_length: int = 512):
    from transferflow.tokenizers import wordpiece

    return wordpiece(texts, p, model_max_length)


def build(p, tokenizer, dropout: float):
    from transformers import BertConfig

    from transferflow.masked_lm import SparseBertForMaskedLM

    m = p.model
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
        max_position_embeddings=m.max_length, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout, pad_token_id=tokenizer.pad_token_id, attn_implementation="sdpa",
    )
    return SparseBertForMaskedLM(config)


def collator(p, tokenizer):
    from transferflow.masked_lm import masking_collator

    return masking_collator(p, tokenizer)


def checkpoint_class():
    from transferflow.masked_lm import SparseBertForMaskedLM

    return SparseBertForMaskedLM


register(Family(
    name="bert", architecture="encoder", objective="masked-LM", tokenizer=tokenizer, build=build, collator=collator,
    checkpoint_class=checkpoint_class, model_types=("bert",), prediction="sparse", poolings=("cls",),
    dropout_fields=("hidden_dropout_prob", "attention_probs_dropout_prob"),
    # BERT's `output.dense` names both the attention output and the feed-forward down-projection;
    # (IA)^3 scales the second only (its input is the activation), hence the layer-anchored regex.
    layout=AdapterLayout(lora_targets=("query", "value"),
                         ia3_targets=r".*\.(key|value)|.*\.layer\.\d+\.output\.dense",
                         ia3_feedforward=r".*\.layer\.\d+\.output\.dense", head_linear=("pooler.dense",),
                         projections=("query", "key", "value", "output.dense", "intermediate.dense")),
    heads={"classification": "sequence_classification", "ner": "token_classification"},
))
