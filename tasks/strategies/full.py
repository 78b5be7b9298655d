"""full: every weight trained, starting from the pretrained model (full fine-tuning), on the family's task
head: a classifier or tagger on an encoder, prompt + label word on a decoder (supervised fine-tuning),
text-to-text on an encoder-decoder."""

from transferflow.strategy import GradientStrategy, register

register(GradientStrategy(name="full", summary="pretrained model, all weights trained", init="pretrained",
                          architectures=("encoder", "decoder", "encoder-decoder"), task_types=("classification", "ner")))
