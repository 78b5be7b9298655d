"""Fine-tuning strategies: one file each, registered on import, looked up by name.

A strategy only says where the weights start (pretrained or random) and how the model is wrapped
or frozen before training; one training loop (tasks/finetune.py, through Trainer) serves them all.
The few that cannot use that loop (scikit-learn baselines, the two-headed multitask model) set `fit`
and train themselves; their model folders load through transferflow.models like every other.
Adding one is one file here plus one row in tests/test_strategies.py.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import ConfigDict, Field
from torch import nn

from transferflow.config import NoBoolNumbers

if TYPE_CHECKING:  # datasets is slow to import and only the fit hook's signature names it
    import datasets


ENCODER_FAMILIES = ("bert", "modernbert")
"""The encoder families (pretrain.family): the default of Strategy.families."""


class StrategyOptions(NoBoolNumbers):
    """Options every strategy accepts; a strategy subclasses this to add its own."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    learning_rate: float | None = Field(None, gt=0)
    """Overrides finetune.learning_rate for this strategy (adapters like larger rates)."""


def _unchanged(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class FitInputs:
    """What a strategy with its own `fit` gets from the finetune stage: data, shared settings, paths."""

    task: datasets.DatasetDict
    """Prepared task splits (train, validation, test) with columns `text` and `label` (a ClassLabel)."""
    params: Any
    """The finetune params section (FinetuneParams): seed, max_length, steps, batch size."""
    pretrained: Path
    """Folder of the pretrained encoder (transformers format, with its tokenizer)."""
    tokenizer: Path
    """Folder of the trained tokenizer."""
    prepared: Path
    """Folder of the prepare stage's outputs (auxiliary tasks such as `aux_task` live here)."""
    checkpoints: Path
    """Scratch folder for checkpoints; removed after the stage."""


@dataclass(frozen=True)
class Strategy:
    name: str
    """Name used in params.yaml (finetune.strategies) and on the leaderboard."""
    summary: str
    """One line for `transferflow strategies` and the model card."""
    init: Literal["pretrained", "random", "none"]
    """Start from the pretrained encoder, from random weights of the same architecture, or use no
    neural network at all ("none": classical baselines such as tfidf)."""
    adapt: Callable[[nn.Module, StrategyOptions], nn.Module] = lambda model, options: model
    """Freeze or wrap the classifier before training; returns the module to train."""
    export: Callable[[nn.Module], nn.Module] = _unchanged
    """Turn the trained module into a plain transformers model for evaluation and serving."""
    Options: type[StrategyOptions] = StrategyOptions
    """Schema of finetune.options.<name> in params.yaml."""
    training_args: Callable[[StrategyOptions], dict] = lambda options: {}
    """Extra TrainingArguments for this strategy (e.g. an optimizer Trainer knows by name)."""
    param_groups: Callable[[nn.Module, float, StrategyOptions], list[dict]] | None = None
    """Optimizer parameter groups with their own learning rates (model, base learning rate, options);
    None trains every trainable parameter at the base rate with Trainer's default AdamW."""
    extra_positions: Callable[[StrategyOptions], int] = lambda options: 0
    """Positions the strategy takes before the input (a prefix shifts them), which finetune.max_length
    must leave free in the pretrained model."""
    families: tuple[str, ...] = ENCODER_FAMILIES
    """Model families (pretrain.family) the strategy applies to; init "none" strategies apply to all."""
    task_types: tuple[str, ...] = ("classification",)
    """Task types (prepare.task_type) the strategy applies to."""
    unavailable: Callable[[str], str | None] = lambda family: None
    """Why the installed libraries cannot run the strategy for this family (naming the version), or
    None. Checked when params load, so `transferflow check-params` says it, not a traceback mid-training."""
    fit: Callable[[FitInputs, StrategyOptions, Path], dict] | None = None
    """A strategy that trains itself instead of the Trainer loop (scikit-learn baselines, multitask):
    fit(inputs, options, out) writes a model folder `out/model` that transferflow.models.load_classifier
    reads and returns summary fields: trainable_params, total_params, validation {accuracy, f1, ...},
    optionally `notes` (lines for the leaderboard). None: the Trainer loop with adapt/export above."""


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add a strategy to the registry; names are unique snake_case words."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", strategy.name):
        raise ValueError(f"strategy name {strategy.name!r} must be snake_case")
    if strategy.name in STRATEGIES:
        raise ValueError(f"strategy {strategy.name!r} is registered twice")
    STRATEGIES[strategy.name] = strategy
    return strategy


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; registered: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name]


# Importing every module of this package registers every strategy: one file is one strategy.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
