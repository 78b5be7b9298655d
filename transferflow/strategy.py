"""The fine-tuning strategy contract and its registry; the strategies themselves are one file each in
tasks/strategies/, registered on import, looked up by name.

A strategy only says where the weights start (pretrained or random) and how the model is wrapped
or frozen before training; one training loop (tasks/finetune.py, through Trainer) serves them all.
The few that cannot use that loop (scikit-learn baselines, the two-headed multitask model) set `fit`
and train themselves; their model folders load through transferflow.models like every other.
Adding one is one file in tasks/strategies/ plus one row in tests/test_strategies.py.

A strategy's file is imported when its name is first asked for (get_strategy), as a plugin: this
module imports none of them, so the params schema (transferflow/config.py) validates strategy names
and options through it without importing upwards; and the finetune stage of one strategy runs that
file's code and no other's, which is what lets dvc.yaml name it as that stage's only strategy file
(editing lora.py re-runs finetune@lora alone).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import ConfigDict, Field

from transferflow.schema import NoBoolNumbers

if TYPE_CHECKING:  # only annotations name them: validating params imports neither torch nor datasets
    import datasets
    from torch import nn


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


PLUGINS = "tasks.strategies"
"""The package of strategy files, each imported by name (get_strategy): plugins, not imports of this module."""

STRATEGIES: dict[str, Strategy] = {}
"""The strategies registered so far: those whose file was imported (all_strategies() imports them all)."""


def register(strategy: Strategy) -> Strategy:
    """Add a strategy to the registry; names are unique snake_case words, each its file's name."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", strategy.name):
        raise ValueError(f"strategy name {strategy.name!r} must be snake_case")
    if strategy.name in STRATEGIES:
        raise ValueError(f"strategy {strategy.name!r} is registered twice")
    STRATEGIES[strategy.name] = strategy
    return strategy


def strategy_names() -> list[str]:
    """Every strategy file's name, sorted, without importing any."""
    package = importlib.import_module(PLUGINS)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def get_strategy(name: str) -> Strategy:
    """The strategy registered by tasks/strategies/<name>.py, imported on first use."""
    if name not in STRATEGIES:
        if name not in strategy_names():
            raise ValueError(f"unknown strategy {name!r}; registered: {', '.join(strategy_names())}")
        importlib.import_module(f"{PLUGINS}.{name}")
        if name not in STRATEGIES:
            raise ValueError(f"tasks/strategies/{name}.py registers no strategy named {name!r}")
    return STRATEGIES[name]


def all_strategies() -> dict[str, Strategy]:
    """Every strategy, each file imported: for listings and the contract tests."""
    return {name: get_strategy(name) for name in strategy_names()}
