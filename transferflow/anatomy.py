"""Where the parts of a BERT or ModernBERT classifier are: the module names adapters target, the
embeddings / layers / head split that freezing and layer-wise rates use, and the positions an input
may take. Read by the strategies and by the loaders (transferflow/models.py, token_classification.py),
which import nothing of each other through it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderLayout:
    """Module names of one encoder architecture (config.model_type), for the adapters that pick
    modules by name (lora, ia3). peft has no default targets for ModernBERT."""

    lora_targets: tuple[str, ...]
    """Modules that get LoRA adapters by default."""
    ia3_targets: str
    """Regex (full match) of the linear layers (IA)^3 rescales."""
    ia3_feedforward: str
    """Regex of the targets whose input is scaled: the feed-forward down-projection."""
    head_linear: tuple[str, ...]
    """Linear layers between the encoder and the classifier, trained beside it by the adapters."""


ENCODER_LAYOUTS = {
    # BERT's `output.dense` names both the attention output and the feed-forward down-projection;
    # (IA)^3 scales the second only (its input is the activation), hence the layer-anchored regex.
    "bert": EncoderLayout(lora_targets=("query", "value"), ia3_targets=r".*\.(key|value)|.*\.layer\.\d+\.output\.dense",
                          ia3_feedforward=r".*\.layer\.\d+\.output\.dense",
                          head_linear=("pooler.dense",)),
    # ModernBERT fuses q, k and v in one `Wqkv`: (IA)^3 rescales the three together. LoRA adapts every
    # linear layer and the token embeddings: on the demo's encoder (validation accuracy, one seed,
    # r 8) attention alone gave 0.675, all linear layers 0.728, with the embeddings 0.857; full 0.852.
    "modernbert": EncoderLayout(lora_targets=("Wqkv", "Wo", "Wi", "tok_embeddings"), ia3_targets=r".*\.attn\.Wqkv|.*\.mlp\.Wo",
                                ia3_feedforward=r".*\.mlp\.Wo",
                                head_linear=("head.dense",)),
}


def encoder_layout(model) -> EncoderLayout:
    model_type = model.config.model_type
    if model_type not in ENCODER_LAYOUTS:
        raise ValueError(f"no module layout for {model_type!r} encoders: known {sorted(ENCODER_LAYOUTS)}")
    return ENCODER_LAYOUTS[model_type]


def classifier_parts(model) -> tuple:
    """(embeddings, encoder layers bottom to top, head modules) of a BERT or ModernBERT sequence or
    token classifier.

    The head is what fine-tuning trains on top of the encoder: BERT's pooler (token classifiers have
    none) or ModernBERT's head (dense + norm, pretrained with the masked-LM decoder), and the
    classifier. ModernBERT's final norm sits between the layers and the head: it goes with the top
    layer. Used by the strategies that freeze or re-rate parts (head, freeze, layerwise_lr).
    """
    base = model.base_model
    if hasattr(base, "encoder"):  # bert
        layers = list(base.encoder.layer)
    else:  # modernbert
        layers = [*base.layers[:-1], type(base.layers)([base.layers[-1], base.final_norm])]  # a ModuleList
    head = [m for m in (getattr(base, "pooler", None), getattr(model, "head", None), getattr(model, "classifier", None))
            if m is not None]
    return base.embeddings, layers, head


def max_input_tokens(model) -> int:
    """Longest input a transformers classifier takes: its position embeddings, less any peft prefix
    (prefixes take the first positions)."""
    prefix = 0
    if getattr(model, "peft_config", None):
        prefix = getattr(next(iter(model.peft_config.values())), "num_virtual_tokens", 0) or 0
        model = model.get_base_model()
    return model.config.max_position_embeddings - prefix
