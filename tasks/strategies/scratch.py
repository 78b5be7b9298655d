"""scratch: random init, same architecture, every weight trained: the traditional baseline that
transfer must beat."""

from transferflow.strategy import Strategy, register

register(Strategy(name="scratch", summary="random init, full training (no transfer)", init="random",
                  task_types=("classification", "ner")))
