"""prompt: zero- and few-shot classification with the pretrained decoder (gpt family), no gradient step.

Each label's word (finetune.prompt.label_words) is scored by its likelihood after the template and k
solved demonstrations drawn with a seed from the training split (transferflow/prompting.py), raw and
with contextual calibration. Every (k, calibration) pair is scored on validation; the best one is saved
(selection by validation, as everywhere). Test accuracy of every pair is reported in the notes, beside,
never used to choose.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from transferflow.strategy import FitInputs, FitStrategy, StrategyOptions, register
from transferflow.prompting import CONTENT_FREE


class PromptOptions(StrategyOptions):
    shots: list[int] = Field([0, 4, 16], min_length=1)
    """Numbers of demonstrations to try (0: zero-shot)."""
    calibrate: list[bool] = Field([False, True], min_length=1)
    """Scorings to try with each k: raw label-word likelihoods (false) and contextual calibration (true),
    which divides them by their probabilities after content-free inputs."""
    content_free: list[str] = Field(list(CONTENT_FREE), min_length=1)
    """Texts that should favour no label, whose label-word probabilities measure the model's bias."""
    seed: int = 42
    """Seed of the demonstrations drawn from the training split."""
    batch_size: int = Field(32, gt=0)
    """Scored sequences per forward pass (each text makes one per label word)."""


def choice_name(k: int, calibrated: bool) -> str:
    return f"{k}-shot" + (" calibrated" if calibrated else "")


def fit(inputs: FitInputs, options: PromptOptions, out: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transferflow.metrics import classification_scores
    from transferflow.prompting import calibration_offsets, draw_demonstrations, few_shot_prefix
    from transferflow.prompting import label_log_likelihoods, render, save_prompt_classifier

    template, words = inputs.params.prompt.template, inputs.params.prompt.label_words
    model = AutoModelForCausalLM.from_pretrained(inputs.pretrained).eval()
    tokenizer = AutoTokenizer.from_pretrained(inputs.pretrained)
    train = inputs.task["train"]
    results, notes = {}, []
    for k in options.shots:
        demos = draw_demonstrations(train["text"], train["label"], k, options.seed)
        prefix = few_shot_prefix(template, [(t, words[y]) for t, y in demos])
        raw = {split: label_log_likelihoods(model, tokenizer, [prefix + render(template, t) for t in
                                                               inputs.task[split]["text"]], words, options.batch_size)
               for split in ("validation", "test")}
        offsets = calibration_offsets(model, tokenizer, prefix, template, words, options.content_free,
                                      options.batch_size)
        for calibrated in options.calibrate:
            shift = offsets if calibrated else 0.0
            scores = {split: classification_scores((raw[split] - shift).argmax(1), inputs.task[split]["label"])
                      for split in raw}
            name = choice_name(k, calibrated)
            results[name] = (scores, demos, offsets if calibrated else None, k, calibrated)
            notes.append(f"{name}: validation accuracy {scores['validation']['accuracy']:.4f}, "
                         f"test accuracy {scores['test']['accuracy']:.4f} (reported, not used to choose)")
    best = max(results, key=lambda name: results[name][0]["validation"][inputs.params.metric])
    scores, demos, offsets, k, calibrated = results[best]
    save_prompt_classifier(out / "model", model, tokenizer, template, words, train.features["label"].names, demos,
                           offsets)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": 0, "total_params": total, "validation": scores["validation"], "shots": k,
            "calibrated": calibrated, "choice": best, "notes": [f"chosen on validation: {best}", *notes],
            "shot_scores": {name: {s: v["accuracy"] for s, v in r[0].items()} for name, r in results.items()}}


register(FitStrategy(name="prompt", summary="pretrained decoder, zero/few-shot prompting scored on label words "
                     "(raw or contextually calibrated), no training",
                     init="pretrained", Options=PromptOptions, fit=fit, architectures=("decoder",)))
