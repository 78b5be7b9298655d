"""freeze: embeddings and the lower `layers` encoder layers frozen, the layers above and the head trained.

Lower layers hold the most general features; freezing them keeps those and trains fewer weights.
"""

from __future__ import annotations

from pydantic import Field

from transferflow.strategy import GradientStrategy, StrategyOptions, register
from transferflow.anatomy import classifier_parts


class FreezeOptions(StrategyOptions):
    layers: int = Field(2, ge=0)
    """Encoder layers frozen from the bottom (the embeddings are always frozen); must not exceed
    the number of layers. Equal to it, only the head trains."""


def adapt(model, options: FreezeOptions, target):
    embeddings, layers, _ = classifier_parts(model)
    if options.layers > len(layers):
        raise ValueError(f"freeze.layers={options.layers} but the encoder has only {len(layers)} layers")
    for module in (embeddings, *layers[:options.layers]):
        module.requires_grad_(False)
    return model


register(GradientStrategy(name="freeze", summary="embeddings + lower k layers frozen, the rest trained",
                          init="pretrained", adapt=adapt, Options=FreezeOptions,
                          task_types=("classification", "ner")))
