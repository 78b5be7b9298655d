"""The fine-tuning strategy contract and its registry; the strategies themselves are one file each in
tasks/strategies/, registered on import, looked up by name.

Two contracts, small on purpose (in the spirit of torchtune's recipes and PEFT's configs):
- a GradientStrategy says where the weights start (pretrained or random) and how the model is adapted
  before training: what is frozen, which adapters wrap it, its optimizer parameter groups and
  optimizer, as one returned Adaptation; and how the result is exported for serving. One loop
  (transferflow/finetuning.py, through transferflow.training.train) trains every one of them, on the
  family's task head (transferflow/heads.py): `full` on an encoder trains a classifier, on GPT-2 it is
  supervised fine-tuning on prompt + label word, on T5 text-to-text.
- a FitStrategy needs no gradient loop of ours (tfidf, features, prompt; multitask, whose two-headed
  model has no task head): `fit(inputs, options, out)` writes a model folder that
  transferflow.models.load_classifier reads and returns its summary figures.
Adding one is one file in tasks/strategies/ plus one row in tests/test_strategies.py.

A strategy's file is imported when its name is first asked for (get_strategy), as a plugin: this
module imports none of them, so the params schema (transferflow/config.py) validates strategy names
and options through it without importing upwards; and the finetune stage of one strategy runs that
file's code and no other's, which is what lets dvc.yaml name it as that stage's only strategy file
(editing lora.py re-runs finetune@lora alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import ConfigDict, Field

from transferflow.plugins import Registry
from transferflow.schema import NoBoolNumbers

if TYPE_CHECKING:  # only annotations name them: validating params imports neither torch nor datasets
    import datasets
    from torch import nn

    from transferflow.family import Family
    from transferflow.heads import TaskHead


class StrategyOptions(NoBoolNumbers):
    """Options every strategy accepts; a strategy subclasses this to add its own."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    learning_rate: float | None = Field(None, gt=0)
    """Overrides finetune.learning_rate for this strategy (adapters like larger rates)."""

    def extra_positions(self) -> int:
        """Positions the strategy takes before the input (a prefix shifts them), which finetune.max_length
        must leave free in the pretrained model."""
        return 0


@dataclass(frozen=True)
class Target:
    """What a gradient strategy adapts: the model family (its adapter layout) and the task head."""

    family: Family
    head: TaskHead


@dataclass(frozen=True)
class Adaptation:
    """How a gradient strategy adapts the model, as one value: the module to train (frozen parts,
    adapters), its optimizer parameter groups and the optimizer."""

    model: nn.Module
    """The module to train; parameters with requires_grad False stay bit-for-bit as they are."""
    param_groups: list[dict] | None = None
    """Optimizer parameter groups, each with an `lr_scale` (times the strategy's learning rate) in place
    of `lr`; None: every trainable parameter at the learning rate, Trainer's default AdamW."""
    optimizer: dict = field(default_factory=dict)
    """TrainingArguments fields that pick an optimizer Trainer knows by name (optim, optim_args, ...)."""


def _unchanged(model: nn.Module, *args) -> nn.Module:
    return model


@dataclass(frozen=True)
class FitInputs:
    """What the fine-tuning loop and a FitStrategy get from the finetune stage: data, settings, paths."""

    task: datasets.DatasetDict
    """Prepared task splits (train, validation, test): `text` and `label` (a ClassLabel), or ner's tags."""
    params: Any
    """The finetune params section (FinetuneParams): seed, max_length, steps, batch size."""
    family: Family
    """The model family (pretrain.family)."""
    task_type: str
    """prepare.task_type: picks the family's task head."""
    pretrained: Path
    """Folder of the pretrained model (transformers format, with its tokenizer)."""
    tokenizer: Path
    """Folder of the trained tokenizer."""
    prepared: Path
    """Folder of the prepare stage's outputs (auxiliary tasks such as `aux_task` live here)."""
    checkpoints: Path
    """Scratch folder for checkpoints; removed after the stage."""

    @property
    def head(self) -> TaskHead:
        """The family's task head for the task type (transferflow/heads.py)."""
        from transferflow.heads import head_for

        return head_for(self.family, self.task_type)


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """What every strategy declares."""

    name: str
    """Name used in params.yaml (finetune.strategies) and on the leaderboard."""
    summary: str
    """One line for `transferflow strategies` and the model card."""
    init: Literal["pretrained", "random", "none"]
    """Start from the pretrained model, from random weights of the same architecture, or use no neural
    network at all ("none": classical baselines such as tfidf)."""
    Options: type[StrategyOptions] = StrategyOptions
    """Schema of finetune.options.<name> in params.yaml."""
    architectures: tuple[str, ...] = ("encoder",)
    """Architectures (Family.architecture: encoder, decoder, encoder-decoder) the strategy applies to."""
    families: tuple[str, ...] | None = None
    """Only these families of those architectures, for a strategy that needs one model's internals
    (pretrain.family); None: every family of the architectures."""
    task_types: tuple[str, ...] = ("classification",)
    """Task types (prepare.task_type) the strategy applies to."""
    unavailable: Callable[[str], str | None] = lambda family: None
    """Why the installed libraries cannot run the strategy for this family (naming the version), or
    None. Checked when params load, so `transferflow check-params` says it, not a traceback mid-training."""

    def why_not(self, family: Family, task_type: str) -> str | None:
        """Why the strategy does not apply to this family and task type, or None when it does."""
        if family.architecture not in self.architectures or (self.families and family.name not in self.families):
            where = f"families {list(self.families)}" if self.families else f"{'/'.join(self.architectures)} models"
            return f"applies to {where}, not to family {family.name} ({family.architecture})"
        if task_type not in self.task_types:
            return f"applies to task types {list(self.task_types)}, not {task_type!r}"
        return None


@dataclass(frozen=True, kw_only=True)
class GradientStrategy(Strategy):
    """Trained by the shared loop on the family's task head."""

    init: Literal["pretrained", "random"] = "pretrained"
    adapt: Callable[[nn.Module, StrategyOptions, Target], Adaptation | nn.Module] = _unchanged
    """Freeze or wrap the model (the family's head on the pretrained or random weights) before training;
    returns the Adaptation, or just the module to train."""
    export: Callable[[nn.Module], nn.Module] = _unchanged
    """Turn the trained module into the plain model the head saves for serving (merge adapters)."""

    def why_not(self, family: Family, task_type: str) -> str | None:
        if task_type not in family.heads:
            return f"needs a task head, and family {family.name} has none for {task_type!r}"
        return super().why_not(family, task_type)

    def adaptation(self, model: nn.Module, options: StrategyOptions, target: Target) -> Adaptation:
        adapted = self.adapt(model, options, target)
        return adapted if isinstance(adapted, Adaptation) else Adaptation(adapted)


@dataclass(frozen=True, kw_only=True)
class FitStrategy(Strategy):
    """Fits itself: no gradient loop of ours."""

    fit: Callable[[FitInputs, StrategyOptions, Path], dict]
    """fit(inputs, options, out) writes a model folder `out/model` that transferflow.models.load_classifier
    reads and returns summary fields: trainable_params, total_params, validation {accuracy, f1, ...},
    optionally `notes` (lines for the leaderboard), steps and optimizer_state_mb."""


STRATEGIES: Registry[Strategy] = Registry("tasks.strategies", "strategy")
"""The strategy files, each imported by name: plugins, not imports of this module."""
register = STRATEGIES.register
strategy_names = STRATEGIES.names
get_strategy = STRATEGIES.get
all_strategies = STRATEGIES.all
