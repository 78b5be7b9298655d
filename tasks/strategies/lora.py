"""lora: low-rank adapters through peft, on any family's task head; the rest frozen. On an encoder the
new head (pooler, classifier) trains in full beside the adapters; on a decoder or an encoder-decoder the
adapters alone train (supervised fine-tuning, text-to-text). Target modules are the family's
(AdapterLayout in transferflow/families/)."""

from __future__ import annotations

from pydantic import Field

from transferflow.strategy import GradientStrategy, StrategyOptions, Target, register


class LoraOptions(StrategyOptions):
    r: int = Field(8, gt=0)
    """Rank of the low-rank update."""
    alpha: int = Field(16, gt=0)
    """Scale of the update is alpha / r."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: list[str] | None = None
    """Modules that get adapters; null: the family's default (BERT's query and value; ModernBERT's
    linear layers and token embeddings; GPT-2's fused attention projection; T5's query and value)."""


def adapt(model, options: LoraOptions, target: Target):
    from peft import LoraConfig, TaskType, get_peft_model  # imported on use: peft is slow to import

    # The head's TaskType (SEQ_CLS, TOKEN_CLS for a ner tagger) makes peft keep the classifier trainable;
    # the pooler (ModernBERT's head) trains too: masked-LM pretraining left BERT's untrained, and
    # ModernBERT's was trained for the decoder (named as its Linear: peft 0.21 cannot merge a wrapped
    # non-Linear). BERT's token classifiers have no pooler: only the head layers the model has.
    layout = target.family.layout
    names = {name for name, _ in model.named_modules()}
    head = [m for m in layout.head_linear if any(n == m or n.endswith("." + m) for n in names)]
    config = LoraConfig(task_type=TaskType[target.head.peft_task_type], r=options.r, lora_alpha=options.alpha,
                        lora_dropout=options.dropout, target_modules=list(options.target_modules or layout.lora_targets),
                        modules_to_save=head or None, fan_in_fan_out=layout.fan_in_fan_out)
    return get_peft_model(model, config)


def export(model):
    """Fold the adapters into the base weights: a plain model that serves with no peft at load time."""
    return model.merge_and_unload()


register(GradientStrategy(name="lora", summary="pretrained model frozen, LoRA adapters (+ a new classifier head) trained",
                          init="pretrained", adapt=adapt, export=export, Options=LoraOptions,
                          architectures=("encoder", "decoder", "encoder-decoder"), task_types=("classification", "ner")))
