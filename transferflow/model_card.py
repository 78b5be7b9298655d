"""The model card every registered version carries: as its description and as run artifacts.

    facts = collect(params, strategy, model_uri, lineage)   # register: what the model is, scored
    publish(client, name, version, facts)                   # description + model_card.{md,json}
    publish(client, name, version, facts, gate)             # promote: the same card with its decision

Facts are gathered once, at registration, and stored beside the card as JSON, so the promotion stage
re-renders the same card with the gate decision added instead of gathering them again. Scores are
recomputed from the logged model (not copied from the leaderboard), each with a 95% bootstrap interval.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from mlflow.tracking import MlflowClient

from transferflow import gate as stats
from transferflow.config import Params
from transferflow.family import get_family
from transferflow.files import load_prepared, read_json
from transferflow.registry import gate_rows
from transferflow.token_classification import TAGS, is_tagging

TASK = Path("artifacts/prepare/task")
DATA_CARD = Path("artifacts/prepare/data_card.json")
MAX_DESCRIPTION = 5000
"""MLflow's SQL stores keep at most this many characters of a version description."""


def collect(params: Params, strategy: str, model_uri: str, lineage: dict[str, str]) -> dict:
    """Everything the card states, as JSON-able facts; scores the model on validation and test."""
    task = load_prepared(TASK)
    test = task["test"]
    names = test.features[TAGS].feature.names if is_tagging(test) else test.features["label"].names
    data_card = read_json(DATA_CARD) if DATA_CARD.is_file() else {}
    corpus = data_card.get("corpus", {}).get("splits", {}).get("train", {})
    # one load of the model for both splits; ner: token accuracy and entity F1, resampled by sentence
    scoring, scored = gate_rows(model_uri, [task["validation"], task["test"]])
    metrics = {split: {m: vars(stats.score_ci(labels, preds, m, seed=params.prepare.seed, scoring=scoring))
                       for m in scoring.metrics}
               for split, (labels, preds) in zip(("validation", "test"), scored)}
    ft = params.finetune
    return {
        "strategy": strategy,
        "registered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": {"task_source": params.prepare.task_source, "dvc_hash": lineage.get("data_hash", "unknown"),
                 "task_type": "ner" if is_tagging(task["test"]) else "classification",
                 "label_names": names, "rows": {s: len(task[s]) for s in task},
                 "test_split": data_card.get("task", {}).get("test_split", "")},
        "pretraining": {"corpus_source": params.prepare.corpus_source, "lines": corpus.get("rows"),
                        "words": corpus.get("words"), "steps": params.pretrain.max_steps,
                        "family": params.pretrain.family, "objective": get_family(params.pretrain.family).objective,
                        "encoder": params.pretrain.model.model_dump(),
                        "init_from": params.pretrain.init_from},
        "hyperparameters": ft.model_dump(exclude={"strategies", "options"}) | ft.options.get(strategy, {}),
        "metrics": metrics,
        "lineage": lineage,
    }


def _metrics_table(metrics: dict) -> str:
    rows = ["| split | " + " | ".join(stats.METRICS) + " |", "|---|" + "---|" * len(stats.METRICS)]
    for split, scores in metrics.items():
        rows.append(f"| {split} | " + " | ".join(str(stats.Score(**scores[m])) for m in stats.METRICS) + " |")
    return "\n".join(rows)


def render(name: str, version: str | int, facts: dict, gate: dict | None = None) -> str:
    """The card in markdown. Facts may be partial (a version registered by hand): missing parts say so."""
    data, pre, hp = facts.get("data", {}), facts.get("pretraining", {}), facts.get("hyperparameters", {})
    labels = ", ".join(data.get("label_names", [])) or "unknown"
    rows = data.get("rows", {})
    lines = [f"# Model card: {name} v{version}", ""]
    if facts.get("strategy"):
        lines += [f"Fine-tuning strategy **{facts['strategy']}**, registered {facts.get('registered_at', '?')}.", ""]
    lines += ["## Data", f"- task: `{data.get('task_source', 'unknown')}`, labels: {labels}",
              f"- data version (DVC hash of data/): `{data.get('dvc_hash', 'unknown')}`",
              f"- rows: {', '.join(f'{s} {n}' for s, n in rows.items()) or 'unknown'}"]
    if data.get("test_split"):
        lines.append(f"- test split: {data['test_split']}")
    start = f"`{pre['init_from']}` (pretrain.init_from)" if pre.get("init_from") else "random weights"
    lines += ["", "## Pretraining",
              f"- started from: {start}",
              f"- corpus: `{pre.get('corpus_source', 'unknown')}`, {pre.get('lines', '?')} lines, "
              f"{pre.get('words', '?')} words; {pre.get('steps', '?')} {pre.get('objective', 'pretraining')} steps",
              f"- model ({pre.get('family', 'bert')}): "
              f"{', '.join(f'{k}={v}' for k, v in pre.get('encoder', {}).items()) or 'unknown'}",
              "", "## Hyperparameters", ", ".join(f"{k}={v}" for k, v in hp.items()) or "unknown", ""]
    if facts.get("metrics"):
        lines += ["## Metrics (95% bootstrap intervals)", _metrics_table(facts["metrics"]), ""]
    lines += ["## Promotion gate"]
    if gate:
        lines += [f"**{gate['decision'].upper()}** against {gate.get('against') or 'no champion'} "
                  f"({gate.get('at', '')}, MLflow run {gate.get('run_id', '?')}).", "", gate.get("table", "")]
    else:
        lines += ["Pending: decided by the promote stage (`transferflow promote`).", ""]
    max_length = hp.get("max_length", "?")
    types = ", ".join(sorted({n[2:] for n in data.get("label_names", []) if n[:2] in ("B-", "I-")}))
    ner = [  # the ner task's use and limits (data.task_type ner), else the classification ones
        f"Finding named entities ({types}) in English sentences, like those of `{data.get('task_source', '?')}`; "
        "answers the entity spans of each text (type, character offsets); served by `transferflow serve`.",
        "- Words are what whitespace separates (tokenize punctuation apart, as CoNLL does); metrics: accuracy "
        "is token accuracy, f1 entity-level micro F1 (seqeval), intervals resample whole sentences.",
        "- It answers only those entity types, with no confidence scores."] if data.get("task_type") == "ner" else []
    lines += ["## Intended use",
              ner[0] if ner else f"Labelling short English sentences as {labels}, like the sentences of "
              f"`{data.get('task_source', 'the task data')}`; served by `transferflow serve`.",
              "", "## Known limits",
              (f"- Pretraining continued from `{pre['init_from']}` on {pre.get('words', '?')} words: it keeps that "
               "checkpoint's limits and biases." if pre.get("init_from") else
               f"- The model was pretrained from scratch on {pre.get('words', '?')} words, far less than public "
               "pretrained models: expect lower accuracy, and brittleness on words and domains outside that text."),
              *(ner[1:] or [f"- Inputs longer than {max_length} tokens are truncated.",
                            f"- It always answers one of: {labels}; there is no 'unsure' answer and scores are not "
                            "calibrated."]),
              f"- Test scores come from {rows.get('test', '?')} rows; read them with their intervals.",
              "- Not evaluated for bias across groups, dialects or domains."]
    return "\n".join(lines) + "\n"


def publish(client: MlflowClient, name: str, version: str | int, facts: dict, gate: dict | None = None) -> str:
    """Write the card as the version's description and as model_card.{md,json} in the version's run."""
    card = render(name, version, facts, gate)
    run_id = client.get_model_version(name, str(version)).run_id
    note = "\n\n(truncated: the full card is the run's model_card.md)"
    description = card if len(card) <= MAX_DESCRIPTION else card[:MAX_DESCRIPTION - len(note)] + note
    client.update_model_version(name, str(version), description=description)
    if run_id:
        client.log_text(run_id, card, "model_card.md")
        client.log_dict(run_id, facts, "model_card.json")
    return card


def load_facts(client: MlflowClient, name: str, version: str | int) -> dict:
    """The facts register stored; {} for a version registered another way."""
    import mlflow.artifacts

    run_id = client.get_model_version(name, str(version)).run_id
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/model_card.json") if run_id else {}
    except Exception:  # missing artifact raises different types per store; all mean "no card"
        return {}
