"""layerwise_lr: every weight trained, with learning rates that shrink layer by layer from the head
down (discriminative fine-tuning, as in ULMFiT): lower layers hold general features and move least.
"""

from __future__ import annotations

from pydantic import Field
from torch import nn
from transformers.trainer_pt_utils import get_parameter_names

from transferflow.strategy import Adaptation, GradientStrategy, StrategyOptions, register
from transferflow.anatomy import classifier_parts


class LayerwiseOptions(StrategyOptions):
    decay: float = Field(0.8, gt=0, le=1)
    """Each layer's rate is the rate of the layer above times this; the top encoder layer gets the
    base rate and the embeddings sit one step below the lowest layer."""
    head_lr_multiplier: float = Field(5.0, gt=0)
    """The new head (pooler + classifier) learns at this multiple of the base rate: it starts random."""


def adapt(model: nn.Module, options: LayerwiseOptions, target) -> Adaptation:
    """Every weight trains, in parameter groups whose rates (lr_scale, times the base rate) fall layer by layer."""
    embeddings, layers, head = classifier_parts(model)
    top = len(layers)  # the embeddings are level 0, the layers 1..top
    levels = [(embeddings, options.decay ** top)]
    levels += [(layer, options.decay ** (top - 1 - i)) for i, layer in enumerate(layers)]
    levels += [(module, options.head_lr_multiplier) for module in head]
    # Trainer's default optimizer rule, kept here: no weight decay on biases and LayerNorm weights.
    decayed = set(get_parameter_names(model, [nn.LayerNorm], [r"bias", r"layernorm", r"rmsnorm"]))
    names = {p: n for n, p in model.named_parameters()}
    groups = []
    for module, rate in levels:
        params = [p for p in module.parameters() if p.requires_grad]
        for decay_on in (True, False):
            chosen = [p for p in params if (names[p] in decayed) == decay_on]
            if chosen:
                groups.append({"params": chosen, "lr_scale": rate, **({} if decay_on else {"weight_decay": 0.0})})
    covered = {p for g in groups for p in g["params"]}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p not in covered]
    if missing:  # a parameter outside embeddings/layers/head would silently never train
        raise ValueError(f"layerwise_lr has no learning rate for {missing}")
    return Adaptation(model, param_groups=groups)


register(GradientStrategy(name="layerwise_lr", summary="all weights trained, learning rates decaying layer by layer",
                          init="pretrained", Options=LayerwiseOptions, adapt=adapt, task_types=("classification", "ner")))
