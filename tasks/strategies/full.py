"""full: every weight trained, starting from the pretrained encoder (full fine-tuning)."""

from tasks.strategies import Strategy, register

register(Strategy(name="full", summary="pretrained encoder, all weights trained", init="pretrained",
                  task_types=("classification", "ner")))
