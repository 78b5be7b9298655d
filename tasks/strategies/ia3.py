"""ia3: (IA)^3 through peft: learned vectors rescale attention keys and values and the feed-forward
activations; the encoder frozen, the new head (pooler + classifier) trained. The fewest trained
weights of any adapter, and, being rescalings, they fold into the weights on export.
"""

from __future__ import annotations

from tasks.strategies import Strategy, StrategyOptions, register

# Regexes over module names: BERT's `output.dense` names both the attention output projection and
# the feed-forward down-projection, and (IA)^3 scales only the second (its input is the activation).
FEEDFORWARD = r".*\.layer\.\d+\.output\.dense"


class IA3Options(StrategyOptions):
    target_modules: str = rf".*\.(key|value)|{FEEDFORWARD}"
    """Regex (full match) over module names of the linear layers that get a scaling vector."""
    feedforward_modules: str = FEEDFORWARD
    """Regex over the targets whose input (not output) is scaled: the feed-forward down-projection."""


def adapt(model, options: IA3Options):
    from peft import IA3Config, TaskType, get_peft_model  # imported on use: peft is slow to import

    # The pooler's linear layer trains beside the classifier (masked-LM pretraining left it untrained);
    # named as the Linear, not `pooler`: peft 0.21's merge_and_unload fails on a wrapped non-Linear module.
    config = IA3Config(task_type=TaskType.SEQ_CLS, target_modules=options.target_modules,
                       feedforward_modules=options.feedforward_modules, modules_to_save=["pooler.dense"])
    return get_peft_model(model, config)


def export(model):
    """Fold the scaling vectors into the weights: a plain model that serves with no peft at load time."""
    return model.merge_and_unload()


register(Strategy(name="ia3", summary="pretrained encoder frozen, (IA)^3 scaling vectors + head trained",
                  init="pretrained", adapt=adapt, export=export, Options=IA3Options))
