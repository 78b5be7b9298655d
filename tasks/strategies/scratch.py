"""scratch: random init, same architecture and task head, every weight trained: the traditional baseline
that transfer must beat."""

from transferflow.strategy import GradientStrategy, register

register(GradientStrategy(name="scratch", summary="random init, full training (no transfer)", init="random",
                          architectures=("encoder", "decoder", "encoder-decoder"), task_types=("classification", "ner")))
