"""text_to_text: the task cast as text-to-text on the pretrained encoder-decoder (t5 family), all weights
fine-tuned as seq2seq: the input is the template filled with the text, the target is the label's word.
Scored by generating and mapping the text back to a label; anything else counts as wrong
(transferflow/text_to_text.py)."""

from __future__ import annotations

from pathlib import Path

from transferflow.strategy import FitInputs, Strategy, StrategyOptions, register


def fit(inputs: FitInputs, options: StrategyOptions, out: Path) -> dict:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, set_seed

    from transferflow.metrics import classification_scores
    from transferflow.text_to_text import UNANSWERED, generate_label_ids, save_text_to_text, seq2seq_features
    from transferflow.training import count_parameters, optimizer_state_mb, train_with_answers, validation_summary

    p = inputs.params
    template, words = p.prompt.template, p.prompt.label_words
    set_seed(p.seed)
    model = AutoModelForSeq2SeqLM.from_pretrained(inputs.pretrained)
    tokenizer = AutoTokenizer.from_pretrained(inputs.pretrained)
    trainable, total = count_parameters(model)
    encode = seq2seq_features(tokenizer, template, words, p.max_length)
    data = {split: inputs.task[split].map(encode, batched=True, remove_columns=inputs.task[split].column_names)
            for split in ("train", "validation")}
    validation = inputs.task["validation"]

    def score_validation(model) -> dict[str, float]:  # as served: generate, map the text back to a label
        preds = generate_label_ids(model, tokenizer, validation["text"], template, words, p.max_length)
        return classification_scores(preds, validation["label"]) | {"unanswered": float((preds == UNANSWERED).mean())}

    trainer, result = train_with_answers(model, tokenizer, data["train"], data["validation"], p,
                                         str(inputs.checkpoints), options.learning_rate or p.learning_rate,
                                         score_validation)
    scores = trainer.evaluate()  # the kept checkpoint
    label_names = inputs.task["train"].features["label"].names
    save_text_to_text(out / "model", trainer.model, tokenizer, template, words, label_names, p.max_length)
    return {"trainable_params": trainable, "total_params": total, "validation": validation_summary(scores),
            "steps": result.global_step, "optimizer_state_mb": optimizer_state_mb(trainer.optimizer),
            "notes": [f"validation: {scores['eval_unanswered']:.1%} of generations are no label word "
                      "(counted wrong)"]}


register(Strategy(name="text_to_text", summary="pretrained encoder-decoder, label generated as a word (seq2seq)",
                  init="pretrained", fit=fit, families=("t5",)))
