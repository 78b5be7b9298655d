"""prefix: P-tuning v2 through peft: trained key/value prefixes in every layer (deep prompts, no
reparameterisation), the encoder frozen, the new head (pooler + classifier) trained.

Prefixes are extra attention inputs, not weight updates, so they cannot be merged: the model folder
holds the adapter beside its base model, and transferflow/models.py:load_classifier reads both.
The prefix takes the first positions, so inputs must fit in max_position_embeddings minus the prefix.
"""

from __future__ import annotations

from pydantic import Field

from transferflow.strategy import GradientStrategy, StrategyOptions, register


class PrefixOptions(StrategyOptions):
    num_virtual_tokens: int = Field(16, gt=0)
    """Length of the trained prefix in every layer; finetune.max_length plus this must not exceed
    the encoder's max_length (pretrain.model.max_length), since the prefix shifts positions."""

    def extra_positions(self) -> int:
        return self.num_virtual_tokens


def adapt(model, options: PrefixOptions, target):
    from peft import PrefixTuningConfig, TaskType, get_peft_model  # imported on use: peft is slow to import

    limit = model.config.max_position_embeddings
    if options.num_virtual_tokens >= limit:
        raise ValueError(f"prefix.num_virtual_tokens={options.num_virtual_tokens} leaves no room in {limit} positions")
    # prefix_projection=False is P-tuning v2 (prefixes trained directly); TaskType.SEQ_CLS keeps the
    # classifier trainable, and the pooler's Linear joins it: masked-LM pretraining left it untrained.
    config = PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=options.num_virtual_tokens,
                                prefix_projection=False, modules_to_save=["pooler.dense"])
    return get_peft_model(model, config)


def unavailable(family: str) -> str | None:
    """peft finds where to feed the prefixes by looking for `past_key_values` in the encoder's forward
    signature. transformers 5.24 renamed that argument to `cache` in BertModel (see pyproject.toml's cap)."""
    import inspect

    import transformers

    if "past_key_values" in inspect.signature(transformers.BertModel.forward).parameters:
        return None
    return (f"transformers {transformers.__version__}'s BertModel.forward takes no `past_key_values`, which "
            "peft's prefix tuning looks for; install transformers<5.24 (the lock has it: make setup)")


def export(model):
    """Unchanged: prefixes cannot be folded into weights (saved as adapter + base, see module docstring)."""
    return model


register(GradientStrategy(name="prefix", summary="pretrained encoder frozen, deep prefixes (P-tuning v2) + head trained",
                          init="pretrained", adapt=adapt, export=export, Options=PrefixOptions, unavailable=unavailable,
                          families=("bert",)))  # ModernBERT's attention takes no past key/values: nowhere to put prefixes
