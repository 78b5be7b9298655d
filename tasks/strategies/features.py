"""features: feature extraction. The pretrained encoder stays frozen; the pooled hidden states of one
layer feed a scikit-learn classifier.

A layer sweep fits the classifier on every layer (0 is the embedding output) and scores each on
validation, so the summary, MLflow (metric `layer_validation_accuracy`, step = layer) and
artifacts/finetune/features/layers.csv (a DVC plot) show which level of the encoder transfers best.
The model folder holds the encoder, the classifier (skops) and the layer and pooling used
(transferflow/models.py, kind `encoder_features`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from pydantic import Field

from transferflow.strategy import FitInputs, FitStrategy, StrategyOptions, register


class FeaturesOptions(StrategyOptions):
    layer: Literal["best"] | int = "best"
    """Layer whose hidden states are the features: 0 is the embedding output, the encoder's layer
    count the top; "best" takes the layer with the best validation score (finetune.metric) in the sweep."""
    pooling: Literal["cls", "mean"] = "mean"
    """One vector per text: the first ([CLS]) token's state, or the mean over non-padding tokens."""
    classifier: Literal["logistic_regression", "linear_svm", "random_forest"] = "logistic_regression"
    """scikit-learn classifier on the features (the linear two on standardised features)."""
    C: float = Field(1.0, gt=0)
    """Inverse regularisation strength (logistic regression and linear SVM)."""
    n_estimators: int = Field(100, gt=0)
    """Number of trees (random forest)."""


def build_head(options: FeaturesOptions, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if options.classifier == "random_forest":
        return RandomForestClassifier(n_estimators=options.n_estimators, random_state=seed)
    linear = (LogisticRegression(C=options.C, max_iter=2000, random_state=seed) if options.classifier ==
              "logistic_regression" else LinearSVC(C=options.C, random_state=seed))
    return make_pipeline(StandardScaler(), linear)


def head_params(head) -> int:
    """Learned numbers in the head: weights and biases, or decision nodes for a forest."""
    last = head[-1] if hasattr(head, "steps") else head
    if hasattr(last, "estimators_"):
        return int(sum(tree.tree_.node_count for tree in last.estimators_))
    return int(last.coef_.size + last.intercept_.size)


def fit(inputs: FitInputs, options: FeaturesOptions, out: Path) -> dict:
    import mlflow
    from transformers import AutoModel, AutoTokenizer

    from transferflow.metrics import classification_scores
    from transferflow.models import pooled_hidden_states, save_sklearn
    from transferflow.training import count_parameters

    p, task = inputs.params, inputs.task
    encoder = AutoModel.from_pretrained(inputs.pretrained)
    tokenizer = AutoTokenizer.from_pretrained(inputs.tokenizer)
    features = {split: pooled_hidden_states(encoder, tokenizer, task[split]["text"], options.pooling, p.max_length)
                for split in ("train", "validation")}
    layers = features["train"].shape[0]
    if options.layer != "best" and not 0 <= options.layer < layers:
        raise ValueError(f"features.layer={options.layer}: the encoder has layers 0..{layers - 1} (0: embeddings)")

    sweep, heads = [], []
    for layer in range(layers):  # one classifier per layer, scored on validation only
        head = build_head(options, p.seed).fit(features["train"][layer], task["train"]["label"])
        scores = classification_scores(head.predict(features["validation"][layer]), task["validation"]["label"])
        sweep.append({"layer": layer, "validation_accuracy": scores["accuracy"], "validation_f1": scores["f1"]})
        heads.append((head, scores))
        if mlflow.active_run():
            mlflow.log_metrics({"layer_validation_accuracy": scores["accuracy"],
                                "layer_validation_f1": scores["f1"]}, step=layer)
    chosen = (max(range(layers), key=lambda i: sweep[i][f"validation_{p.metric}"]) if options.layer == "best"
              else options.layer)
    head, scores = heads[chosen]

    encoder.save_pretrained(out / "model" / "encoder")
    tokenizer.save_pretrained(out / "model" / "encoder")
    save_sklearn(out / "model", head, {"kind": "encoder_features", "layer": chosen, "pooling": options.pooling,
                                      "max_length": p.max_length,
                                      "label_names": task["train"].features["label"].names})
    with open(out / "layers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(sweep[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(sweep)
    trained = head_params(head)
    by_layer = ", ".join(f"{s['layer']}: {s[f'validation_{p.metric}']:.3f}" for s in sweep)
    return {"trainable_params": trained, "total_params": trained + count_parameters(encoder)[1],
            "layer": chosen, "validation": scores, "layer_sweep": sweep,
            "notes": [f"layer {chosen} ({options.pooling} pooling, {options.classifier}); validation "
                      f"{p.metric} by layer (0 = embeddings): {by_layer}"]}


register(FitStrategy(name="features", summary="frozen pretrained encoder, one layer's pooled states + scikit-learn "
                     "classifier (layer sweep)", init="pretrained", Options=FeaturesOptions, fit=fit))
