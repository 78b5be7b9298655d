"""Supervised fine-tuning of a decoder on prompt-formatted examples, shared by the sft_full and sft_lora
strategies: the template filled with the text, then the label's word, with the loss on the word."""

from __future__ import annotations

from pathlib import Path


def fit_sft(inputs, options, out: Path, wrap=None) -> dict:
    """Train the decoder on prompts (wrapped first, e.g. by LoRA, when `wrap` is given) and save it as a
    kind `prompt` model folder with no demonstrations. `inputs` and `options` are the strategy's
    FitInputs and options (tasks/strategies), which this module does not import: it sits below them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from transferflow.metrics import classification_scores
    from transferflow.prompting import label_log_likelihoods, render, save_prompt_classifier, sft_features
    from transferflow.training import count_parameters, optimizer_state_mb, train_with_answers, validation_summary

    p = inputs.params
    template, words = p.prompt.template, p.prompt.label_words
    set_seed(p.seed)
    model = AutoModelForCausalLM.from_pretrained(inputs.pretrained)
    tokenizer = AutoTokenizer.from_pretrained(inputs.pretrained)
    model = wrap(model, options) if wrap else model
    trainable, total = count_parameters(model)
    encode = sft_features(tokenizer, template, words, model.config.max_position_embeddings)
    data = {split: inputs.task[split].map(encode, batched=True, remove_columns=inputs.task[split].column_names)
            for split in ("train", "validation")}
    validation = inputs.task["validation"]
    prompts = [render(template, text) for text in validation["text"]]

    def score_validation(model) -> dict[str, float]:  # as served: the likelier label word wins (zero-shot)
        return classification_scores(label_log_likelihoods(model, tokenizer, prompts, words).argmax(1),
                                     validation["label"])

    trainer, result = train_with_answers(model, tokenizer, data["train"], data["validation"], p,
                                         str(inputs.checkpoints), options.learning_rate or p.learning_rate,
                                         score_validation)
    scores = trainer.evaluate()  # the kept checkpoint
    served = trainer.model
    if hasattr(served, "peft_config"):
        # Saved before merging: merge_and_unload removes the LoRA layers, leaving an empty adapter behind.
        served.save_pretrained(out / "adapter")  # the adapter alone is what must be stored per task
        served = served.merge_and_unload()
    label_names = inputs.task["train"].features["label"].names
    save_prompt_classifier(out / "model", served, tokenizer, template, words, label_names, demonstrations=[])
    return {"trainable_params": trainable, "total_params": total, "validation": validation_summary(scores),
            "steps": result.global_step, "optimizer_state_mb": optimizer_state_mb(trainer.optimizer)}
