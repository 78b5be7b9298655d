"""prompt: zero- and few-shot classification with the pretrained decoder (gpt family), no gradient step.

Each label's word (finetune.prompt.label_words) is scored by its likelihood after the template and k
solved demonstrations drawn with a seed from the training split (transferflow/prompting.py). Every k
in `shots` is scored on validation; the best one is saved (selection by validation, as everywhere).
Test accuracy of every k is reported in the notes, beside, never used to choose.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tasks.strategies import FitInputs, Strategy, StrategyOptions, register


class PromptOptions(StrategyOptions):
    shots: list[int] = Field([0, 4, 16], min_length=1)
    """Numbers of demonstrations to try (0: zero-shot)."""
    seed: int = 42
    """Seed of the demonstrations drawn from the training split."""
    batch_size: int = Field(32, gt=0)
    """Scored sequences per forward pass (each text makes one per label word)."""


def fit(inputs: FitInputs, options: PromptOptions, out: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transferflow.metrics import classification_scores
    from transferflow.prompting import draw_demonstrations, few_shot_prefix, label_log_likelihoods, render
    from transferflow.prompting import save_prompt_classifier

    template, words = inputs.params.prompt.template, inputs.params.prompt.label_words
    model = AutoModelForCausalLM.from_pretrained(inputs.pretrained).eval()
    tokenizer = AutoTokenizer.from_pretrained(inputs.pretrained)
    train = inputs.task["train"]
    results, notes = {}, []
    for k in options.shots:
        demos = draw_demonstrations(train["text"], train["label"], k, options.seed)
        prefix = few_shot_prefix(template, [(t, words[y]) for t, y in demos])
        scores = {}
        for split in ("validation", "test"):
            contexts = [prefix + render(template, t) for t in inputs.task[split]["text"]]
            preds = label_log_likelihoods(model, tokenizer, contexts, words, options.batch_size).argmax(1)
            scores[split] = classification_scores(preds, inputs.task[split]["label"])
        results[k] = (scores, demos)
        notes.append(f"{k}-shot: validation accuracy {scores['validation']['accuracy']:.4f}, "
                     f"test accuracy {scores['test']['accuracy']:.4f} (reported, not used to choose)")
    best = max(options.shots, key=lambda k: results[k][0]["validation"][inputs.params.metric])
    scores, demos = results[best]
    save_prompt_classifier(out / "model", model, tokenizer, template, words, train.features["label"].names, demos)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": 0, "total_params": total, "validation": scores["validation"], "shots": best,
            "notes": [f"chosen on validation: {best}-shot", *notes],
            "shot_scores": {str(k): {s: v["accuracy"] for s, v in r[0].items()} for k, r in results.items()}}


register(Strategy(name="prompt", summary="pretrained decoder, zero/few-shot prompting scored on label words, no training",
                  init="pretrained", Options=PromptOptions, fit=fit, families=("gpt",)))
