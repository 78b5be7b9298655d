"""sft_lora: supervised fine-tuning of the pretrained decoder (gpt family) through LoRA adapters on its
attention projections (peft); everything else frozen. Same prompts and serving as sft_full; the adapters
are merged into the weights for serving, and saved apart (adapter/) as what a task must store."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from transferflow.strategy import FitInputs, Strategy, StrategyOptions, register
from transferflow.sft import fit_sft


class SftLoraOptions(StrategyOptions):
    r: int = Field(8, gt=0)
    """Rank of the low-rank update."""
    alpha: int = Field(16, gt=0)
    """Scale of the update is alpha / r."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: list[str] = ["c_attn"]
    """Layers that get adapters (GPT-2's fused query/key/value projection by default)."""


def wrap(model, options: SftLoraOptions):
    from peft import LoraConfig, TaskType, get_peft_model  # imported on use: peft is slow to import

    config = LoraConfig(task_type=TaskType.CAUSAL_LM, r=options.r, lora_alpha=options.alpha,
                        lora_dropout=options.dropout, target_modules=list(options.target_modules),
                        fan_in_fan_out=True)  # GPT-2 stores its projections as Conv1D (transposed)
    return get_peft_model(model, config)


def fit(inputs: FitInputs, options: SftLoraOptions, out: Path) -> dict:
    return fit_sft(inputs, options, out, wrap=wrap)


register(Strategy(name="sft_lora", summary="pretrained decoder frozen, LoRA adapters trained on prompt + label word (SFT)",
                  init="pretrained", Options=SftLoraOptions, fit=fit, families=("gpt",)))
