"""multitask: one shared pretrained encoder trained jointly on the task (SST-2) and the auxiliary task
the prepare stage wrote (AG News, 4 topics), one classification head per task.

Batches mix rows of both tasks (in proportion to their training sets); each row is scored by its own
task's head and the losses add up. Checkpoints are chosen on the main task's validation score, as for
every strategy. The main task's head on the shared encoder is exported as a plain transformers
classifier: that is the leaderboard row `multitask`, to compare with `full` (single-task). The
auxiliary task's scores go in the summary and the leaderboard notes, beside a single-task `full` run
on the auxiliary task with the same steps (option `compare_single_task`).
AG News caveat: its splits are all carved from its upstream test split (see the data card).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from transferflow.strategy import FitInputs, FitStrategy, StrategyOptions, register

TASKS = ("task", "aux")
"""Head names, in task-id order: the main task (leaderboard) and the auxiliary task."""


class MultitaskOptions(StrategyOptions):
    aux_weight: float = Field(1.0, ge=0)
    """Weight of an auxiliary-task row's loss relative to a main-task row's."""
    compare_single_task: bool = True
    """Also train single-task `full` on the auxiliary task with the same steps, to show what sharing
    the encoder gained or cost there (doubles the training time)."""


class MultitaskModel(nn.Module):
    """A shared encoder and one linear head per task on the pooled [CLS] state; a row's `task` id picks
    its head. Hand-written: transformers has no multi-head sequence classifier. The head layout (pooler
    -> dropout -> linear) is BertForSequenceClassification's, so export is a copy of weights."""

    def __init__(self, encoder: nn.Module, num_labels: list[int], aux_weight: float):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(encoder.config.hidden_dropout_prob)
        self.heads = nn.ModuleList(nn.Linear(encoder.config.hidden_size, n) for n in num_labels)
        self.register_buffer("weights", torch.tensor([1.0, aux_weight]), persistent=False)

    def forward(self, input_ids, attention_mask, task, labels=None, token_type_ids=None):
        pooled = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).pooler_output
        pooled = self.dropout(pooled)
        # One logits tensor for Trainer: a row's columns beyond its task's labels never win the argmax.
        logits = pooled.new_full((len(pooled), max(h.out_features for h in self.heads)), -1e4)
        loss = pooled.new_zeros(())
        for t, head in enumerate(self.heads):
            rows = task == t
            if rows.any():
                scores = head(pooled[rows])
                logits[rows, :head.out_features] = scores
                if labels is not None:
                    loss = loss + self.weights[t] * F.cross_entropy(scores, labels[rows], reduction="sum")
        return {"loss": loss / len(pooled), "logits": logits} if labels is not None else {"logits": logits}


def export(model: MultitaskModel, t: int, label_names: list[str], pretrained: Path):
    """The shared encoder with head `t` as a plain transformers sequence classifier."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(pretrained, num_labels=len(label_names),
                                        id2label=dict(enumerate(label_names)),
                                        label2id={n: i for i, n in enumerate(label_names)})
    plain = AutoModelForSequenceClassification.from_config(config)
    plain.base_model.load_state_dict(model.encoder.state_dict())
    plain.classifier.load_state_dict(model.heads[t].state_dict())
    return plain.eval()


def _encode(inputs: FitInputs, splits, tokenizer, t: int):
    """The split encoded by the family's classification head, each row tagged with its task id."""
    from datasets import Value

    data = inputs.head.encode(splits, tokenizer, inputs.params, model=None).cast_column("labels", Value("int64"))
    return data.map(lambda batch: {"task": [t] * len(batch["labels"])}, batched=True)


def _scores(trainer, dataset) -> dict:
    from transferflow.metrics import classification_scores

    output = trainer.predict(dataset)
    return classification_scores(output.predictions.argmax(-1), output.label_ids)


def _single_task_full(inputs: FitInputs, aux) -> dict:
    """Single-task `full` on the auxiliary task, same params: the baseline sharing must be judged by."""
    import dataclasses

    import mlflow

    from transferflow.finetuning import finetune
    from transferflow.metrics import classification_scores
    from transferflow.models import load_classifier

    with tempfile.TemporaryDirectory(dir=inputs.checkpoints) as tmp, \
            mlflow.start_run(run_name="aux-single-task-full", nested=True):
        single = dataclasses.replace(inputs, task=aux, checkpoints=Path(tmp) / "checkpoints")
        summary = finetune(single, "full", Path(tmp))
        preds = load_classifier(Path(tmp) / "model").predict(aux["test"]["text"])
    return {"validation": summary["validation"], "test": classification_scores(preds, aux["test"]["label"])}


def fit(inputs: FitInputs, options: MultitaskOptions, out: Path) -> dict:
    from datasets import concatenate_datasets
    from transformers import AutoModel, AutoTokenizer, set_seed

    from transferflow.files import load_prepared, read_json
    from transferflow.metrics import classification_scores
    from transferflow.training import count_parameters, optimizer_state_mb, train, training_arguments

    p, task = inputs.params, inputs.task
    aux = load_prepared(inputs.prepared / "aux_task")
    names = [task["train"].features["label"].names, aux["train"].features["label"].names]
    tokenizer = AutoTokenizer.from_pretrained(inputs.tokenizer)
    data = [_encode(inputs, splits, tokenizer, t) for t, splits in enumerate((task, aux))]
    set_seed(p.seed)
    model = MultitaskModel(AutoModel.from_pretrained(inputs.pretrained), [len(n) for n in names], options.aux_weight)
    inputs.checkpoints.mkdir(parents=True, exist_ok=True)
    args = training_arguments(p, str(inputs.checkpoints / "multitask"), load_best_model_at_end=True,
                              metric_for_best_model=f"task_{p.metric}", greater_is_better=True,
                              learning_rate=options.learning_rate or p.learning_rate)
    trainer, result = train(  # the best checkpoint (main-task validation) is reloaded at the end
        model, args, concatenate_datasets([d["train"] for d in data]), inputs.head.collator(tokenizer, model),
        eval_data={name: d["validation"] for name, d in zip(TASKS, data)}, patience=p.early_stopping_patience,
        compute_metrics=lambda pred: classification_scores(pred.predictions.argmax(-1), pred.label_ids))
    validation = [_scores(trainer, d["validation"]) for d in data]
    aux_test = _scores(trainer, data[1]["test"])
    for t, folder in ((0, "model"), (1, "aux_model")):
        export(trainer.model, t, names[t], inputs.pretrained).save_pretrained(out / folder)
        tokenizer.save_pretrained(out / folder)

    single = _single_task_full(inputs, aux) if options.compare_single_task else None
    source = read_json(inputs.prepared / "data_card.json")["aux_task"]["source"]
    trainable, total = count_parameters(model)
    note = f"aux task {source} (splits carved from its test split): test accuracy {aux_test['accuracy']:.3f}"
    note += f" vs single-task full {single['test']['accuracy']:.3f}" if single else ""
    summary = {
        "trainable_params": trainable, "total_params": total, "steps": result.global_step,
        "optimizer_state_mb": optimizer_state_mb(trainer.optimizer),
        "validation": validation[0],
        "aux_validation_accuracy": validation[1]["accuracy"], "aux_test_accuracy": aux_test["accuracy"],
        "aux_test_f1": aux_test["f1"],
        "aux_task": {"source": source, "validation": validation[1], "test": aux_test, "single_task_full": single},
        "notes": [note + "; main task: compare this row with `full`"],
    }
    if single:
        summary |= {"aux_single_task_full_test_accuracy": single["test"]["accuracy"],
                    "aux_single_task_full_test_f1": single["test"]["f1"]}
    return summary


register(FitStrategy(name="multitask", summary="pretrained encoder shared by the task and AG News, one head each, "
                     "trained jointly", init="pretrained", Options=MultitaskOptions, fit=fit,
                     families=("bert",)))  # its head is BERT's pooler (MultitaskModel)
