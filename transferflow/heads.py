"""Task heads: how a model family does one task type, in one object that builds the model, encodes the
task, scores the model the way it is served, and saves it as a model folder that
transferflow.models.load_classifier reads.

    head = head_for(get_family("gpt"), "classification")      # PromptAnswerHead
    model = head.build(pretrained, "pretrained", head.label_names(task), params.finetune)

Every gradient strategy trains through a head (transferflow/finetuning.py), so `full` on a GPT decoder is
supervised fine-tuning on prompt + label word, and `full` on T5 is text-to-text: the same strategy on
the family's head, not a loop of its own. A family record (transferflow/families/) names its heads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    import datasets

    from transferflow.config import FinetuneParams
    from transferflow.family import Family


class TaskHead:
    """One (family, task type): the contract every head keeps."""

    task_type: str = "classification"
    """prepare.task_type the head does."""
    peft_task_type: str = "SEQ_CLS"
    """peft's TaskType for adapters on this head (which modules peft keeps trainable, how it calls the model)."""
    served_scoring: bool = False
    """Checkpoints are scored by predicting as the served model does (generation, label-word likelihoods)
    rather than from the logits of the gold labels (Trainer's compute_metrics)."""

    def label_names(self, task: datasets.DatasetDict) -> list[str]:
        return task["train"].features["label"].names

    def auto_class(self):
        raise NotImplementedError

    def build(self, pretrained: Path, init: str, label_names: list[str], p: FinetuneParams):
        """The pretrained model with this head (init "pretrained"), or the same architecture from random
        weights ("random"), seeded with p.seed."""
        from transformers import AutoConfig, set_seed

        settings = self.config_settings(label_names, p)
        set_seed(p.seed)
        if init == "pretrained":
            return self.auto_class().from_pretrained(pretrained, **settings)
        return self.auto_class().from_config(AutoConfig.from_pretrained(pretrained, **settings))

    def config_settings(self, label_names: list[str], p: FinetuneParams) -> dict:
        return {}

    def encode(self, task: datasets.DatasetDict, tokenizer, p: FinetuneParams, model) -> dict[str, datasets.Dataset]:
        raise NotImplementedError

    def collator(self, tokenizer, model):
        raise NotImplementedError

    def compute_metrics(self, label_names: list[str]) -> Callable | None:
        """Trainer's compute_metrics from logits and gold labels; None for a head with served scoring."""
        return None

    def classifier(self, model, tokenizer, label_names: list[str], p: FinetuneParams):
        """The model in memory behind transferflow.models' classifier interface (predict(texts)), as served."""
        raise NotImplementedError

    def validation_scores(self, model, tokenizer, validation: datasets.Dataset, label_names: list[str],
                          p: FinetuneParams) -> dict[str, float]:
        """Scores of the model on the validation split, predicted as served (heads with served scoring)."""
        from transferflow.metrics import classification_scores

        preds = self.classifier(model, tokenizer, label_names, p).predict(validation["text"])
        return classification_scores(preds, validation["label"])

    def notes(self, scores: dict[str, float]) -> list[str]:
        """Leaderboard notes from the kept checkpoint's validation scores."""
        return []

    def save(self, model, tokenizer, folder: Path, label_names: list[str], p: FinetuneParams) -> None:
        raise NotImplementedError


def trained_length(tokenizer, p: FinetuneParams):
    """A copy of `tokenizer` that truncates at finetune.max_length, the length the classifier was trained
    and validated at: served texts are cut where training cut them, not at the model's positions."""
    import copy

    served = copy.copy(tokenizer)
    served.model_max_length = p.max_length
    return served


class SequenceClassificationHead(TaskHead):
    """An encoder with a classifier on the pooled sequence (AutoModelForSequenceClassification)."""

    def auto_class(self):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def config_settings(self, label_names, p):
        settings: dict[str, Any] = dict(num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                                        label2id={n: i for i, n in enumerate(label_names)})
        if p.pooling:  # params validation allows it where the family lists the choice (Family.poolings)
            settings["classifier_pooling"] = p.pooling
        return settings

    def encode(self, task, tokenizer, p, model):
        def encode(batch):
            return tokenizer(batch["text"], truncation=True, max_length=p.max_length)

        return task.map(encode, batched=True, remove_columns=["text"]).rename_column("label", "labels")

    def collator(self, tokenizer, model):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def compute_metrics(self, label_names):
        from transferflow.metrics import classification_scores

        def compute(eval_pred) -> dict[str, float]:
            logits, labels = eval_pred
            return classification_scores(np.argmax(logits, axis=-1), labels)

        return compute

    def classifier(self, model, tokenizer, label_names, p):
        from transferflow.models import TransformersClassifier

        return TransformersClassifier(model, trained_length(tokenizer, p))

    def save(self, model, tokenizer, folder, label_names, p):
        from transferflow.models import save_classifier

        save_classifier(model, folder)  # plain model, or adapter + base where it cannot merge
        trained_length(tokenizer, p).save_pretrained(folder)


class TokenClassificationHead(SequenceClassificationHead):
    """An encoder with a tag per word piece (AutoModelForTokenClassification), scored on entities (ner)."""

    task_type = "ner"
    peft_task_type = "TOKEN_CLS"

    def label_names(self, task):
        from transferflow.token_classification import TAGS

        return task["train"].features[TAGS].feature.names

    def auto_class(self):
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification

    def encode(self, task, tokenizer, p, model):
        from transferflow.token_classification import encode_tagged

        return encode_tagged(task, tokenizer, p.max_length)

    def collator(self, tokenizer, model):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def compute_metrics(self, label_names):
        from transferflow.token_classification import trainer_metrics

        return trainer_metrics(label_names)

    def classifier(self, model, tokenizer, label_names, p):
        from transferflow.token_classification import TokenTagger

        return TokenTagger(model, trained_length(tokenizer, p))


class _AnswerHead(TaskHead):
    """Examples that carry their own answer tokens (the label's word, finetune.prompt.label_words)."""

    served_scoring = True

    def features(self, tokenizer, p: FinetuneParams, model) -> Callable:
        """Dataset.map function: input ids of the rendered text, labels on the answer word's tokens."""
        raise NotImplementedError

    def encode(self, task, tokenizer, p, model):
        # train and validation only: test is scored by the evaluate stage, on the served model
        encode = self.features(tokenizer, p, model)
        return {split: task[split].map(encode, batched=True, remove_columns=task[split].column_names)
                for split in ("train", "validation")}

    def collator(self, tokenizer, model):
        from transformers import DataCollatorForSeq2Seq

        # Pads input_ids and labels (with -100) apart; with model=None it also serves a decoder.
        return DataCollatorForSeq2Seq(tokenizer, model=model if model.config.is_encoder_decoder else None)


class PromptAnswerHead(_AnswerHead):
    """A decoder trained on the template filled with the text, then the label's word, with the loss on
    the word (supervised fine-tuning); served as a zero-shot prompt scored on the label words."""

    peft_task_type = "CAUSAL_LM"

    def auto_class(self):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def features(self, tokenizer, p, model):
        from transferflow.prompting import sft_features

        return sft_features(tokenizer, p.prompt.template, p.prompt.label_words, model.config.max_position_embeddings)

    def classifier(self, model, tokenizer, label_names, p):
        from transferflow.prompting import PromptClassifier

        return PromptClassifier(model, tokenizer, p.prompt.template, p.prompt.label_words, label_names,
                                batch_size=32)

    def save(self, model, tokenizer, folder, label_names, p):
        from transferflow.prompting import save_prompt_classifier

        save_prompt_classifier(folder, model, tokenizer, p.prompt.template, p.prompt.label_words, label_names,
                               demonstrations=[])


class TextToTextHead(_AnswerHead):
    """An encoder-decoder reading the template filled with the text and generating the label's word;
    a generation that is no label word counts as wrong (transferflow/text_to_text.py)."""

    peft_task_type = "SEQ_2_SEQ_LM"

    def auto_class(self):
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM

    def features(self, tokenizer, p, model):
        from transferflow.text_to_text import seq2seq_features

        return seq2seq_features(tokenizer, p.prompt.template, p.prompt.label_words, p.max_length)

    def classifier(self, model, tokenizer, label_names, p):
        from transferflow.text_to_text import TextToTextClassifier

        return TextToTextClassifier(model, tokenizer, p.prompt.template, p.prompt.label_words, label_names,
                                    p.max_length)

    def validation_scores(self, model, tokenizer, validation, label_names, p):
        from transferflow.metrics import classification_scores
        from transferflow.text_to_text import UNANSWERED

        preds = self.classifier(model, tokenizer, label_names, p).predict(validation["text"])
        return classification_scores(preds, validation["label"]) | {"unanswered": float((preds == UNANSWERED).mean())}

    def notes(self, scores):
        return [f"validation: {scores['unanswered']:.1%} of generations are no label word (counted wrong)"]

    def save(self, model, tokenizer, folder, label_names, p):
        from transferflow.text_to_text import save_text_to_text

        save_text_to_text(folder, model, tokenizer, p.prompt.template, p.prompt.label_words, label_names,
                          p.max_length)


HEADS: dict[str, TaskHead] = {"sequence_classification": SequenceClassificationHead(),
                               "token_classification": TokenClassificationHead(),
                               "prompt_answer": PromptAnswerHead(), "text_to_text": TextToTextHead()}
"""The heads by name, as family records name them (Family.heads)."""


def head_for(family: Family, task_type: str) -> TaskHead:
    """The family's head for a task type, resolved once from params and passed down."""
    return HEADS[family.head(task_type)]
