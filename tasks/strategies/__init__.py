"""Fine-tuning strategies: one file each, registered on import, looked up by name.

A strategy only says where the weights start (pretrained or random) and how the model is wrapped
or frozen before training; one training loop (tasks/finetune.py, through Trainer) serves them all.
Adding one is one file here plus one row in tests/test_strategies.py.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class StrategyOptions(BaseModel):
    """Options every strategy accepts; a strategy subclasses this to add its own."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    learning_rate: float | None = Field(None, gt=0)
    """Overrides finetune.learning_rate for this strategy (adapters like larger rates)."""


def _unchanged(model: nn.Module) -> nn.Module:
    return model


@dataclass(frozen=True)
class Strategy:
    name: str
    """Name used in params.yaml (finetune.strategies) and on the leaderboard."""
    summary: str
    """One line for `transferflow strategies` and the model card."""
    init: Literal["pretrained", "random"]
    """Start from the pretrained encoder, or from random weights of the same architecture."""
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
