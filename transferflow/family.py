"""The model-family contract and its registry; the families themselves are one file each in
transferflow/families/, registered on import, looked up by name (pretrain.family).

A family is everything that depends on the architecture, in one record: the tokenizer it is trained
with, the pretraining model and objective, how a checkpoint of it is loaded, the module names adapters
target, and the task head for each task type it can do (transferflow/heads.py). The stages and strategies
ask the record and never branch on a family's name. Adding a family is one file in
transferflow/families/ (plus a head, if none of the existing ones fits its task).

Family files are imported by name, like strategy files (transferflow/strategy.py): the params schema
validates `pretrain.family` through this module without importing torch or any family's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

from transferflow.plugins import Registry

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class AdapterLayout:
    """Module names of one architecture for the adapters that pick modules by name (lora, ia3, galore):
    peft has no default targets for ModernBERT, nor for our GPT-2 and T5 task heads."""

    lora_targets: tuple[str, ...]
    """Modules that get LoRA adapters by default."""
    ia3_targets: str = ""
    """Regex (full match) of the linear layers (IA)^3 rescales ("": the family has no (IA)^3 layout)."""
    ia3_feedforward: str = ""
    """Regex of the targets whose input is scaled: the feed-forward down-projection."""
    head_linear: tuple[str, ...] = ()
    """Linear layers between the encoder and the classifier, trained beside it by the adapters."""
    projections: tuple[str, ...] = ()
    """Every attention and feed-forward projection (module-name suffixes): what GaLore optimizes in low rank."""
    fan_in_fan_out: bool = False
    """The projections are stored transposed (GPT-2's Conv1D): peft must be told."""


@dataclass(frozen=True, kw_only=True)
class Family:
    name: str
    """pretrain.family in params.yaml; the file's name."""
    architecture: Literal["encoder", "decoder", "encoder-decoder"]
    """What the strategies ask (Strategy.architectures): an encoder takes classifier heads, freezing by layer..."""
    objective: str
    """The pretraining objective, as the model card names it (masked-LM, causal-LM, span-corruption)."""
    tokenizer: Callable[..., Any]
    """(texts, TokenizerParams, model_max_length) -> a trained PreTrainedTokenizerFast."""
    build: Callable[..., nn.Module]
    """(PretrainParams, tokenizer, dropout) -> the model to pretrain, from random weights."""
    collator: Callable[..., Any]
    """(PretrainParams, tokenizer) -> the objective as a collator: batches with their labels."""
    checkpoint_class: Callable[[], type]
    """The class a checkpoint (pretrain.init_from) loads into, the objective's head included."""
    model_types: tuple[str, ...] = ()
    """config.json model_type a checkpoint of this family must have (empty: any that the class loads)."""
    prediction: str = "dense"
    """Where the objective's logits sit (held-out scoring): `sparse` (one row per labelled position),
    `shifted` (position t predicts token t + 1) or `dense` (aligned with the labels)."""
    relative_positions: bool = False
    """Positions are relative (T5): no input length cap from the position embeddings."""
    poolings: tuple[str, ...] = ()
    """finetune.pooling values the family's sequence classifier takes (empty: none to choose)."""
    dropout_fields: tuple[str, ...] = ()
    """Config fields of the model's dropout: pretraining sets its own, fine-tuning gets pretrain.model.dropout."""
    layout: AdapterLayout | None = None
    """Module names for the adapters; None: the family takes no named-module adapters."""
    heads: dict[str, str] = field(default_factory=dict)
    """The task head (a name in transferflow/heads.py:HEADS) for each task type (prepare.task_type) the
    family can be fine-tuned on. Named, not imported: the tokenizer and pretrain stages read the record
    and must not depend on fine-tuning's code."""

    def head(self, task_type: str) -> str:
        """The name of the family's head for `task_type`."""
        if task_type not in self.heads:
            raise ValueError(f"family {self.name!r} has no head for task type {task_type!r}: "
                             f"it does {', '.join(self.heads)}")
        return self.heads[task_type]


FAMILIES: Registry[Family] = Registry("transferflow.families", "family")
"""The family files, each imported by name."""
register = FAMILIES.register
family_names = FAMILIES.names
get_family = FAMILIES.get
