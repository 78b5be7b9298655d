"""sft_full: supervised fine-tuning of every weight of the pretrained decoder (gpt family) on
prompt-formatted examples: the template filled with the text, then the label's word, with the loss on
the word. Served like `prompt` (zero-shot template, transferflow/prompting.py), so the leaderboard
compares what training added."""

from __future__ import annotations

from pathlib import Path

from transferflow.strategy import FitInputs, Strategy, StrategyOptions, register
from transferflow.sft import fit_sft


def fit(inputs: FitInputs, options: StrategyOptions, out: Path) -> dict:
    return fit_sft(inputs, options, out)


register(Strategy(name="sft_full", summary="pretrained decoder, all weights trained on prompt + label word (SFT)",
                  init="pretrained", fit=fit, families=("gpt",)))
