"""The registry side of the model lifecycle: aliases, the champion's history, rollback, scoring a version.

    from transferflow import registry
    registry.set_champion(client, "transferflow-sst2", "5", action="promote", reason="gate passed")
    registry.rollback(client, "transferflow-sst2")      # @champion back to the one before
    registry.history(client, "transferflow-sst2")       # who held @champion when, oldest first

Every move of `@champion` is appended to the registered model as a tag `champion.history.NNNN`
(JSON: version, previous, action, by, at, reason), so the history lives with the registry and
survives any local state. Rollback pops that history like a stack: two rollbacks go back two reigns.
"""

from __future__ import annotations

import getpass
import json
import socket
from datetime import datetime, timezone

import numpy as np
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from transferflow import gate
from transferflow.errors import RegistryError  # noqa: F401 (raised here; callers import it from here too)
from transferflow.serving import NO_LABEL

CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "champion.history."
ROLLED_BACK_TAG = "champion.rolled_back"
"""Set on a version rollback removed from @champion; the promotion gate refuses it from then on."""


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None. (Its `.version` is an int in MLflow 3: compare as str.)"""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:  # no such alias (or no such model): both mean "nobody holds it"
        return None


def history(client: MlflowClient, name: str) -> list[dict]:
    """Every move of @champion, oldest first."""
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException:
        return []
    return [json.loads(tags[k]) for k in sorted(tags) if k.startswith(HISTORY_TAG)]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def set_champion(client: MlflowClient, name: str, version: str | int, action: str, reason: str = "",
                 run_id: str | None = None) -> dict:
    """Give @champion to `version` and append the move to the history; returns the history entry."""
    version = str(version)
    previous = version_by_alias(client, name, CHAMPION)
    entry = {"version": version, "previous": str(previous.version) if previous else None, "action": action,
             "by": f"{getpass.getuser()}@{socket.gethostname()}", "at": _now(), "reason": reason}
    if run_id:
        entry["run_id"] = run_id
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_registered_model_tag(name, f"{HISTORY_TAG}{len(history(client, name)):04d}", json.dumps(entry))
    client.set_model_version_tag(name, version, "champion.since", entry["at"])
    if previous and str(previous.version) != version:
        client.set_model_version_tag(name, previous.version, "champion.until", entry["at"])
    return entry


def reigns(entries: list[dict]) -> list[str]:
    """The champion stack the history describes: a rollback undoes the move before it."""
    # A registry older than its history (champion set by hand, or before transferflow kept one) still
    # knows the first recorded move's previous champion: that is the bottom of the stack.
    stack: list[str] = [entries[0]["previous"]] if entries and entries[0].get("previous") else []
    for e in entries:
        if e["action"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(e["version"])
    return stack


def rollback(client: MlflowClient, name: str, reason: str = "manual rollback") -> dict:
    """Move @champion back to the champion before the current one; the current one is marked rolled back."""
    current = version_by_alias(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"{name!r} has no @champion: nothing to roll back")
    stack = reigns(history(client, name))
    if not stack or stack[-1] != str(current.version):
        raise RegistryError(f"@champion of {name!r} (v{current.version}) was moved outside transferflow; "
                            "set it by hand with the MLflow client")
    if len(stack) < 2:
        raise RegistryError(f"v{current.version} is the first champion of {name!r}: no previous champion")
    client.set_model_version_tag(name, current.version, ROLLED_BACK_TAG, _now())
    # Recorded as action "rollback", which tells reigns() to pop the current reign rather than push.
    return set_champion(client, name, stack[-2], action="rollback", reason=reason)


def predict_ids(model_uri: str, texts: list[str], label_names: list[str]) -> np.ndarray:
    """Load a registered model and score texts; its label names are mapped back to class ids."""
    import mlflow.pyfunc

    answers = mlflow.pyfunc.load_model(model_uri).predict(list(texts))
    index = {label: i for i, label in enumerate(label_names)} | {NO_LABEL: -1}  # -1 scores as wrong
    unknown = sorted({str(a) for a in answers} - set(index))
    if unknown:
        raise RegistryError(f"{model_uri} answers labels {unknown} that the task does not have ({label_names})")
    return np.array([index[str(a)] for a in answers])


def predict_tags(model_uri: str, texts: list[str]) -> list[list[str]]:
    """Load a registered ner model and tag the (whitespace-separated) words of texts: the entity spans it
    answers are turned back into IOB2 word tags, so what is scored is what the served model says."""
    import mlflow.pyfunc

    from transferflow.token_classification import spans_to_tags

    answers = mlflow.pyfunc.load_model(model_uri).predict(list(texts))
    if len(answers) != len(texts) or not all(isinstance(a, list) for a in answers):
        raise RegistryError(f"{model_uri} does not answer entity spans per text: is it a ner model?")
    return [spans_to_tags(text, spans) for text, spans in zip(texts, answers)]


def gate_rows(model_uri: str, splits: list) -> tuple[gate.Scoring, list[tuple[np.ndarray, np.ndarray]]]:
    """A registered model scored on prepared splits, from one load: the gate's scoring and, per split,
    (labels, predictions) as transferflow.gate takes them: label ids per row, or for a ner task the
    per-sentence counts of transferflow.token_classification.sentence_outcomes."""
    from transferflow.token_classification import TAGS, is_tagging, sentence_outcomes

    texts = [text for split in splits for text in split["text"]]
    ends = np.cumsum([len(split) for split in splits])
    if is_tagging(splits[0]):
        names = splits[0].features[TAGS].feature.names
        tags = predict_tags(model_uri, texts)
        return gate.NER, [sentence_outcomes([[names[t] for t in s] for s in split[TAGS]], tags[end - len(split):end])
                          for split, end in zip(splits, ends)]
    ids = predict_ids(model_uri, texts, splits[0].features["label"].names)
    return gate.CLASSIFICATION, [(np.asarray(split["label"]), ids[end - len(split):end])
                                 for split, end in zip(splits, ends)]
