"""The strategies with no Trainer loop: tfidf (TF-IDF + logistic regression) and features (frozen
encoder layer -> scikit-learn classifier, with a layer sweep).

    pytest tests/test_classical.py

On the smoke workspace (real SST-2 subset, 2,000 training rows): tfidf learns well above the majority
class; the features sweep scores every layer; saved models predict exactly as at fit time; both run
through the finetune stage, the leaderboard and the registered MLflow pyfunc.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest

from transferflow.models import load_classifier

TEXTS = ["a gripping , funny film", "a dull , lifeless mess", ""]


def _with_finetune(params, **update):
    return params.model_copy(update={"finetune": params.finetune.model_copy(update=update)})


@pytest.fixture(scope="module")
def classical(pretrained_workspace):
    """tfidf and features through tasks.finetune.main, once for the module."""
    from tasks import finetune
    from transferflow.config import load_params

    cwd = os.getcwd()
    os.chdir(pretrained_workspace)
    try:
        params = _with_finetune(load_params("params.yaml"), strategies=["tfidf", "features"])
        yield params, {name: finetune.main(params, name) for name in ("tfidf", "features")}
    finally:
        os.chdir(cwd)


def test_tfidf_learns_well_above_the_majority_class(classical, in_pretrained):
    from transferflow.files import load_prepared

    _, summaries = classical
    validation = load_prepared("artifacts/prepare/task")["validation"]
    majority = max(Counter(validation["label"]).values()) / len(validation)
    summary = summaries["tfidf"]
    assert summary["validation"]["accuracy"] >= majority + 0.15, (summary["validation"], majority)
    assert summary["init"] == "none" and summary["trainable_params"] == summary["total_params"] > 1000
    assert summary["stored_mb"] < 5  # compressed skops, not a verbose JSON vocabulary


def test_features_sweep_scores_every_layer(classical, in_pretrained):
    params, summaries = classical
    summary = summaries["features"]
    layers = params.pretrain.model.num_layers + 1  # the embedding output is layer 0
    sweep = summary["layer_sweep"]
    assert [s["layer"] for s in sweep] == list(range(layers))
    best = max(sweep, key=lambda s: s["validation_accuracy"])
    assert summary["layer"] == best["layer"] and summary["validation"]["accuracy"] == best["validation_accuracy"]
    with open(in_pretrained / "artifacts/finetune/features/layers.csv") as f:
        assert [int(r["layer"]) for r in csv.DictReader(f)] == list(range(layers))
    run = mlflow.search_runs(experiment_names=["transferflow"], output_format="list",
                             filter_string="tags.`transferflow.strategy` = 'features'")[0]
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "layer_validation_accuracy")
    assert sorted(m.step for m in history) == list(range(layers))
    assert 0 < summary["trainable_params"] < summary["total_params"]  # the encoder is frozen
    assert "layer" in summary["notes"][0]


def test_features_options_fixed_layer_and_other_classifiers(pretrained_workspace, in_pretrained, tmp_path):
    from tasks.finetune import fit_inputs
    from transferflow.config import load_params
    from transferflow.finetuning import finetune

    params = load_params("params.yaml")

    def with_options(options):
        return fit_inputs(params.model_copy(update={"finetune": params.finetune.model_copy(
            update={"options": {"features": options}})}), tmp_path / "checkpoints")

    for options in ({"layer": 0, "pooling": "cls", "classifier": "random_forest", "n_estimators": 10},
                    {"layer": 1, "classifier": "linear_svm"}):
        summary = finetune(with_options(options), "features", tmp_path / str(options["layer"]))
        assert summary["layer"] == options["layer"] and len(summary["layer_sweep"]) == 3
        loaded = load_classifier(tmp_path / str(options["layer"]) / "model")
        assert set(loaded.predict(TEXTS).tolist()) <= {0, 1}
    with pytest.raises(ValueError, match="layers 0..2"):
        finetune(with_options({"layer": 7}), "features", tmp_path / "bad")


def test_saved_models_predict_as_at_fit_time(classical, in_pretrained, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, AutoTokenizer

    from transferflow.files import load_prepared
    from transferflow.metrics import classification_scores
    from transferflow.models import pooled_hidden_states, save_sklearn

    _, summaries = classical
    validation = load_prepared("artifacts/prepare/task")["validation"]
    # The stage's saved model reproduces its fit-time validation scores. Same batch size as at fit
    # time: padding to another length could move floats in the last bit.
    for name in ("tfidf", "features"):
        preds = load_classifier(f"artifacts/finetune/{name}/model", batch_size=128).predict(validation["text"])
        assert classification_scores(preds, validation["label"]) == summaries[name]["validation"]

    # and a round trip through save_sklearn/load_classifier gives identical predictions
    encoder, tokenizer = AutoModel.from_pretrained("artifacts/pretrain"), AutoTokenizer.from_pretrained("artifacts/pretrain")
    features = pooled_hidden_states(encoder, tokenizer, validation["text"], "mean", 48)[2]
    head = LogisticRegression(max_iter=500).fit(features, validation["label"])
    encoder.save_pretrained(tmp_path / "model/encoder")
    tokenizer.save_pretrained(tmp_path / "model/encoder")
    save_sklearn(tmp_path / "model", head, {"kind": "encoder_features", "layer": 2, "pooling": "mean",
                                           "max_length": 48, "label_names": ["negative", "positive"]})
    loaded = load_classifier(tmp_path / "model", batch_size=128)
    np.testing.assert_array_equal(loaded.predict(validation["text"]), head.predict(features))
    assert loaded.label_names == ["negative", "positive"]


def test_untrusted_types_are_refused(tmp_path):
    import skops.io

    from transferflow.models import save_sklearn

    save_sklearn(tmp_path / "model", {"fn": os.system}, {"kind": "sklearn", "label_names": ["a", "b"]})
    with pytest.raises(skops.io.exceptions.UntrustedTypesFoundException):
        load_classifier(tmp_path / "model")


def test_evaluate_and_the_registered_pyfunc(classical, in_pretrained):
    from tasks import evaluate, register
    from transferflow.serving import TextClassifier

    params, summaries = classical
    params = params.model_copy(update={"register": params.register.model_copy(update={"model_name": "classical"})})
    rows = {r["strategy"]: r for r in evaluate.main(params)}
    assert set(rows) == {"tfidf", "features"}
    assert rows["tfidf"]["validation_accuracy"] == summaries["tfidf"]["validation"]["accuracy"]
    board = (in_pretrained / "artifacts/evaluate/leaderboard.md").read_text()
    assert "Notes:" in board and "**features**: layer" in board

    result = register.main(params)
    model = mlflow.pyfunc.load_model(f"models:/classical/{result['version']}")
    assert set(model.predict(TEXTS)) <= {"negative", "positive"}
    for name in ("tfidf", "features"):  # whichever wins, the pyfunc serves it
        served = TextClassifier()
        served.load_context(SimpleNamespace(artifacts={"model": str(in_pretrained / f"artifacts/finetune/{name}/model")}))
        assert set(served.predict(None, TEXTS)) <= {"negative", "positive"}


def test_a_modernbert_feature_extractor_logs_and_serves_without_a_pickle(tmp_path):
    """MLflow loads the served model to infer its signature; an instance would then be cloudpickled,
    loaded model and all, and a ModernBERT that has run with output_hidden_states does not pickle.
    Models-from-code stores no pickle, and the saved model serves in a fresh process."""
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel

    from transformers import AutoTokenizer

    from tests.helpers import predict_in_fresh_process, tiny_pretrained
    from transferflow.models import pooled_hidden_states, save_sklearn
    from transferflow.serving import pyfunc_arguments

    folder, texts = tmp_path / "model", [*TEXTS[:2], "the film opened in 1998", "a quiet , moving story"]
    tiny_pretrained("modernbert", folder / "encoder")
    tokenizer = AutoTokenizer.from_pretrained(folder / "encoder")
    features = pooled_hidden_states(AutoModel.from_pretrained(folder / "encoder"), tokenizer, texts, "mean", 16)[1]
    head = LogisticRegression().fit(features, [i % 2 for i in range(len(texts))])
    save_sklearn(folder, head, {"kind": "encoder_features", "layer": 1, "pooling": "mean", "max_length": 16,
                                "label_names": ["negative", "positive"]})

    mlflow.pyfunc.save_model(tmp_path / "served", **pyfunc_arguments(folder))
    assert not list((tmp_path / "served").rglob("*.pkl"))
    assert set(predict_in_fresh_process(str(tmp_path / "served"), texts)) <= {"negative", "positive"}
