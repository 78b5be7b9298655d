"""Perplexity from per-token negative log-likelihoods, as an `evaluate` module.

The hub's `perplexity` metric downloads a causal LM and scores raw text; transferflow already has the
model in hand (and pretrains masked LMs too), so this module takes the token NLLs the model produced
and returns exp(mean NLL).
"""

import math

import datasets
import evaluate


class Perplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="exp of the mean negative log-likelihood per predicted token.",
            citation="",
            inputs_description="nll: negative log-likelihood (nats) of each predicted token.",
            features=datasets.Features({"nll": datasets.Value("float64")}),
        )

    def _compute(self, nll):
        mean_nll = sum(nll) / max(len(nll), 1)
        return {"perplexity": math.exp(mean_nll), "mean_nll": mean_nll}
