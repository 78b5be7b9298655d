"""full: every weight trained, starting from the pretrained encoder (full fine-tuning)."""

from transferflow.strategy import Strategy, register

register(Strategy(name="full", summary="pretrained encoder, all weights trained", init="pretrained",
                  task_types=("classification", "ner")))
