"""head: the pretrained encoder frozen, only a new classification head trained (a linear probe).

Measures how much the pretrained features already separate the classes, with no change to them.
"""

from __future__ import annotations

from transferflow.strategy import GradientStrategy, register
from transferflow.anatomy import classifier_parts


def adapt(model, options, target):
    _, _, head = classifier_parts(model)
    model.requires_grad_(False)
    for module in head:
        module.requires_grad_(True)
    return model


register(GradientStrategy(name="head", summary="pretrained encoder frozen, only a new head trained (linear probe)",
                          init="pretrained", adapt=adapt, task_types=("classification", "ner")))
