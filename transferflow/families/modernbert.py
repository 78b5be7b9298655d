"""modernbert: ModernBERT (Warner et al. 2024): pre-norm, GeGLU, rotary positions, no biases, WordPiece
without segment ids, pretrained with masked LM through its native sparse prediction (the masked
positions only)."""

from __future__ import annotations

from transferflow.family import AdapterLayout, Family, register


def tokenizer(texts, p, model_max_length: int = 512):
    from transferflow.tokenizers import wordpiece_without_segments

    return wordpiece_without_segments(texts, p, model_max_length)


def build(p, tokenizer, dropout: float):
    """Global attention in every layer: the blocks are shorter than its local window anyway. The saved
    config pools by mean for fine-tuning (finetune.pooling can change it)."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    m = p.model
    specials = dict(pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
                    sep_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
                    eos_token_id=tokenizer.sep_token_id)
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
        max_position_embeddings=m.max_length, embedding_dropout=dropout, mlp_dropout=dropout,
        attention_dropout=dropout, global_attn_every_n_layers=1, sparse_prediction=True,
        classifier_pooling="mean", attn_implementation="sdpa", **specials,
    )
    return ModernBertForMaskedLM(config)


def collator(p, tokenizer):
    from transferflow.masked_lm import masking_collator

    return masking_collator(p, tokenizer)


def checkpoint_class():
    from transformers import ModernBertForMaskedLM

    return ModernBertForMaskedLM


register(Family(
    name="modernbert", architecture="encoder", objective="masked-LM", tokenizer=tokenizer, build=build, collator=collator,
    checkpoint_class=checkpoint_class, model_types=("modernbert",), prediction="sparse", poolings=("cls", "mean"),
    dropout_fields=("embedding_dropout", "mlp_dropout", "attention_dropout"),
    # ModernBERT fuses q, k and v in one `Wqkv`: (IA)^3 rescales the three together. LoRA adapts every
    # linear layer and the token embeddings: on the demo's encoder (validation accuracy, one seed,
    # r 8) attention alone gave 0.675, all linear layers 0.728, with the embeddings 0.857; full 0.852.
    layout=AdapterLayout(lora_targets=("Wqkv", "Wo", "Wi", "tok_embeddings"),
                         ia3_targets=r".*\.attn\.Wqkv|.*\.mlp\.Wo", ia3_feedforward=r".*\.mlp\.Wo",
                         head_linear=("head.dense",), projections=("Wqkv", "Wo", "Wi")),
    heads={"classification": "sequence_classification", "ner": "token_classification"},
))
