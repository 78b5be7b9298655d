"""lora: low-rank adapters through peft (on the modules of transferflow/anatomy.py:ENCODER_LAYOUTS); the new head trains in full."""

from __future__ import annotations

from pydantic import Field

from transferflow.strategy import Strategy, StrategyOptions, register


class LoraOptions(StrategyOptions):
    r: int = Field(8, gt=0)
    """Rank of the low-rank update."""
    alpha: int = Field(16, gt=0)
    """Scale of the update is alpha / r."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: list[str] | None = None
    """Modules that get adapters; null: the family's default (BERT's query and value; ModernBERT's
    linear layers and token embeddings: transferflow/anatomy.py:ENCODER_LAYOUTS)."""


def adapt(model, options: LoraOptions):
    from peft import LoraConfig, TaskType, get_peft_model  # imported on use: peft is slow to import

    from transferflow.anatomy import encoder_layout
    from transferflow.token_classification import is_token_classifier

    # TaskType.SEQ_CLS (TOKEN_CLS for a ner tagger) makes peft keep the classifier trainable; the pooler
    # (ModernBERT's head) trains too: masked-LM pretraining left BERT's untrained, and ModernBERT's was
    # trained for the decoder (named as its Linear: peft 0.21 cannot merge a wrapped non-Linear).
    # BERT's token classifiers have no pooler: only the head layers the model has.
    tagger = is_token_classifier(type(model).__name__)
    layout = encoder_layout(model)
    names = {name for name, _ in model.named_modules()}
    head = [m for m in layout.head_linear if any(n == m or n.endswith("." + m) for n in names)]
    config = LoraConfig(task_type=TaskType.TOKEN_CLS if tagger else TaskType.SEQ_CLS, r=options.r,
                        lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=list(options.target_modules or layout.lora_targets),
                        modules_to_save=head or None)
    return get_peft_model(model, config)


def export(model):
    """Fold the adapters into the base weights: a plain model that serves with no peft at load time."""
    return model.merge_and_unload()


register(Strategy(name="lora", summary="pretrained encoder frozen, LoRA adapters + new head (pooler, classifier) trained",
                  init="pretrained", adapt=adapt, export=export, Options=LoraOptions,
                  task_types=("classification", "ner")))
