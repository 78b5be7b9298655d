"""Where the parts of a BERT or ModernBERT classifier are: the embeddings / layers / head split that
freezing and layer-wise rates use, and the positions an input may take. Read by the strategies and by
the loaders (transferflow/models.py, token_classification.py), which import nothing of each other
through it. The module names adapters target are each family's (AdapterLayout, transferflow/families/)."""

from __future__ import annotations

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


def served_length(model, tokenizer) -> int:
    """Where a served classifier or tagger truncates: where fine-tuning did (the heads save
    finetune.max_length as the tokenizer's model_max_length, which HF pipelines read too), never past
    the model's positions."""
    return min(max_input_tokens(model), tokenizer.model_max_length)
