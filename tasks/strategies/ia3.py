"""ia3: (IA)^3 through peft: learned vectors rescale attention keys and values and the feed-forward
activations; the encoder frozen, the new head (pooler + classifier) trained. The fewest trained
weights of any adapter, and, being rescalings, they fold into the weights on export.
"""

from __future__ import annotations

from transferflow.strategy import GradientStrategy, StrategyOptions, Target, register


class IA3Options(StrategyOptions):
    target_modules: str | None = None
    """Regex (full match) over module names of the linear layers that get a scaling vector; null: the
    encoder's attention keys and values and its feed-forward down-projection (the family's
    AdapterLayout, transferflow/families/)."""
    feedforward_modules: str | None = None
    """Regex over the targets whose input (not output) is scaled; null: the feed-forward
    down-projection. Set it whenever target_modules is set."""


def adapt(model, options: IA3Options, target: Target):
    from peft import IA3Config, TaskType, get_peft_model  # imported on use: peft is slow to import

    layout = target.family.layout
    # The linear layer between encoder and classifier (BERT's pooler, ModernBERT's head) trains beside
    # the classifier; named as the Linear: peft 0.21's merge_and_unload fails on a wrapped non-Linear.
    config = IA3Config(task_type=TaskType[target.head.peft_task_type],
                       target_modules=options.target_modules or layout.ia3_targets,
                       feedforward_modules=options.feedforward_modules or layout.ia3_feedforward,
                       modules_to_save=list(layout.head_linear))
    return get_peft_model(model, config)


def export(model):
    """Fold the scaling vectors into the weights: a plain model that serves with no peft at load time."""
    return model.merge_and_unload()


register(GradientStrategy(name="ia3", summary="pretrained encoder frozen, (IA)^3 scaling vectors + head trained",
                          init="pretrained", adapt=adapt, export=export, Options=IA3Options))
