"""tfidf: TF-IDF word n-grams into logistic regression (scikit-learn), no neural network.

The cheap classical reference every neural strategy must beat: on the full SST-2 train set it
reaches about 0.82 dev accuracy in seconds (shared/README.md). Saved with skops as one pipeline
from raw texts to label ids (transferflow/models.py, kind `sklearn`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from transferflow.strategy import FitInputs, FitStrategy, StrategyOptions, register


class TfidfOptions(StrategyOptions):
    ngram_max: int = Field(2, ge=1)
    """Longest word n-gram used as a feature (1: single words only; 2: words and word pairs)."""
    sublinear_tf: bool = True
    """Scale term counts as 1 + log(count): a word said five times is not five times the evidence."""
    min_df: int = Field(1, ge=1)
    """Drop n-grams found in fewer training texts than this."""
    C: float = Field(4.0, gt=0)
    """Inverse regularisation strength of the logistic regression (larger: weaker regularisation)."""
    max_iter: int = Field(1000, gt=0)
    """Iteration cap of the logistic regression solver."""


def fit(inputs: FitInputs, options: TfidfOptions, out: Path) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from transferflow.metrics import classification_scores
    from transferflow.models import save_sklearn

    train, validation = inputs.task["train"], inputs.task["validation"]
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, options.ngram_max), sublinear_tf=options.sublinear_tf,
                        min_df=options.min_df),
        LogisticRegression(C=options.C, max_iter=options.max_iter, random_state=inputs.params.seed),
    )
    pipeline.fit(train["text"], train["label"])
    save_sklearn(out / "model", pipeline, {"kind": "sklearn", "label_names": train.features["label"].names})
    weights = pipeline[-1].coef_.size + pipeline[-1].intercept_.size
    return {"trainable_params": int(weights), "total_params": int(weights),
            "vocabulary": len(pipeline[0].vocabulary_),
            "validation": classification_scores(pipeline.predict(validation["text"]), validation["label"])}


register(FitStrategy(name="tfidf", summary="TF-IDF word n-grams + logistic regression, no neural network",
                     init="none", Options=TfidfOptions, fit=fit, architectures=("encoder", "decoder", "encoder-decoder")))
