"""promote: the challenger replaces the champion only when it is really better on the test split.

    python -m tasks.promote [--params params.yaml]
    transferflow promote        (the same as a Prefect flow, with the side-by-side table as an artifact)

Both versions are loaded from the registry and re-scored on the same held-out test split; logged
numbers are never trusted. The gates (params `promote`): floors on the challenger's scores, a margin
over the champion, and a paired significance test, so a lucky split does not replace a good model. A
version once rolled back is refused. A refused challenger leaves @champion untouched.

Recorded: an MLflow run (scores, p-value, the table), `gate.*` tags on both versions, the challenger's
model card (its description) with the decision, and metrics/promote.json. A challenger already judged
against the same champion with the same params is not judged again (a scheduled run with nothing new).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from transferflow import gate, model_card, registry
from transferflow.config import Params
from transferflow.errors import TransferflowError
from transferflow.files import load_prepared, read_json, write_json
from transferflow.stage import StageSpec, stage_cli
from transferflow.registry_lock import registry_lock
from transferflow.token_classification import is_tagging
from transferflow.tracking import setup_tracking, stage_run

TASK = Path("artifacts/prepare/task")
REGISTERED = Path("metrics/register.json")
STAGE = StageSpec(
    name="promote",
    params=("promote", "register.model_name"),
    # metrics/register.json is register's output: it orders this stage after registration in dvc.
    deps=(str(TASK), str(REGISTERED)),
    outs=(),
    metrics=("metrics/promote.json",),
    # Reads and moves registry aliases, which dvc cannot see: it always runs, and skips a pair it
    # already judged with the same settings.
    always_changed=True,
)


class PromotionError(TransferflowError):
    """The registry holds nothing to compare (no challenger yet)."""


def _settings_hash(params: Params) -> str:
    return hashlib.sha256(json.dumps(params.promote.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def _finish(result: dict) -> dict:
    write_json(STAGE.metrics[0], result)
    return result


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Compare the registered challenger with @champion on the test split; move @champion only if every
    gate passes."""
    name = params.register.model_name
    setup_tracking()
    client = MlflowClient()
    # Held from reading @champion to moving it: another team flow's decision waits (registry_lock.py)
    with registry_lock(name, client.tracking_uri):
        return _judge(params, client, parent_run_id)


def _challenger(client: MlflowClient, name: str):
    """The version this workspace's register stage created; @challenger when it registered none (or
    another model). Not @challenger first: another flow of the team may have moved it since."""
    registered = read_json(REGISTERED) if REGISTERED.is_file() else {}
    if registered.get("model_name") == name:
        try:
            return client.get_model_version(name, str(registered["version"]))
        except MlflowException:  # deleted since: fall back to the alias
            pass
    return registry.version_by_alias(client, name, registry.CHALLENGER)


def _judge(params: Params, client: MlflowClient, parent_run_id: str | None) -> dict:
    p, name = params.promote, params.register.model_name
    challenger = _challenger(client, name)
    if challenger is None:
        raise PromotionError(f"{name!r} has no @challenger in the registry at {client.tracking_uri}: "
                             "run the pipeline (its register stage) first")
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    # MLflow 3 gives versions as int, tags and aliases as str: one type (str) for every comparison.
    challenger_v, champion_v = str(challenger.version), str(champion.version) if champion else None
    base = {"model_name": name, "challenger": challenger_v, "champion_before": champion_v}
    if champion_v == challenger_v:
        return _finish(base | {"decision": "unchanged", "champion": champion_v,
                               "reason": f"v{challenger_v} already holds @champion"})
    settings = _settings_hash(params)
    tags = challenger.tags
    if champion_v and tags.get("gate.against") == champion_v and tags.get("gate.settings") == settings:
        return _finish(base | {"decision": "unchanged", "champion": champion_v,
                               "reason": f"v{challenger_v} was already judged against v{champion_v} "
                                         f"({tags.get('gate.decision')}, run {tags.get('gate.run_id')})"})

    with stage_run("promote", p.model_dump() | {"model_name": name}, parent_run_id) as run:
        task = load_prepared(TASK)
        test = task["test"]
        majority = None if is_tagging(test) or not p.beat_majority else gate.majority_label(task["train"]["label"])
        # Versions, not aliases: the numbers must belong to the versions the decision is about. A ner task
        # is judged per sentence (gate.NER): entity F1, token accuracy, McNemar on exact entity sets.
        def score(version: str):  # (scoring, labels, predictions) of one version on test
            scoring, [(labels, preds)] = registry.gate_rows(f"models:/{name}/{version}", [test])
            return scoring, labels, preds

        scoring, labels, challenger_preds = score(challenger_v)
        result = gate.compare(labels, score(champion_v)[2] if champion_v else None, challenger_preds,
                              metric=p.metric, margin=p.margin, min_scores=p.min_scores, test=p.test,
                              alpha=p.alpha, n_resamples=p.bootstrap_resamples, seed=p.seed, scoring=scoring,
                              majority_class=majority)
        rolled_back = tags.get(registry.ROLLED_BACK_TAG)
        result.checks.append(gate.Check("never rolled back", "not rolled back",
                                        f"rolled back {rolled_back}" if rolled_back else "no", not rolled_back))
        decision = "promoted" if result.promote else "refused"
        against = f"v{champion_v}" if champion_v else None
        table = (f"### {name}: challenger v{challenger_v} vs champion {against or '(none)'}: "
                 f"{decision.upper()}\n\n{len(test)} test rows; {result.test_detail}.\n\n"
                 + result.table(f"champion {against or '-'}", f"challenger v{challenger_v}"))
        _record_run(result, decision, table)

        if result.promote:
            registry.set_champion(client, name, challenger_v, action="promote",
                                  reason=f"gate passed against {against or 'no champion'}", run_id=run.info.run_id)
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        verdict = {"gate.decision": decision, "gate.against": champion_v or "",
                   "gate.settings": settings, "gate.run_id": run.info.run_id, "gate.at": at,
                   f"gate.test_{p.metric}": f"{result.challenger[p.metric].value:.4f}",
                   "gate.p_value": "" if result.p_value is None else f"{result.p_value:.4g}"}
        for key, value in verdict.items():
            client.set_model_version_tag(name, challenger_v, key, value)
        if champion_v:  # the champion's side: what it was challenged by, and the outcome
            client.set_model_version_tag(name, champion_v, f"gate.challenged_by.v{challenger_v}",
                                         f"{'replaced' if result.promote else 'kept'} ({run.info.run_id})")
        model_card.publish(client, name, challenger_v, model_card.load_facts(client, name, challenger_v),
                           gate={"decision": decision, "against": against, "at": at, "run_id": run.info.run_id,
                                 "table": table})
    return _finish(base | {"decision": decision, "champion": challenger_v if result.promote else champion_v,
                           "run_id": run.info.run_id, "table": table, "gate": result.as_dict()})


def summary(result: dict) -> str:
    """One line: what happened to @champion."""
    if result["decision"] == "unchanged":
        return f"unchanged: {result['reason']}"
    if result["decision"] == "promoted":
        before = result["champion_before"]
        return f"v{result['challenger']} promoted to @champion ({f'was v{before}' if before else 'first champion'})"
    return f"v{result['challenger']} refused; @champion stays v{result['champion']}"


def markdown(result: dict) -> str:
    """The side-by-side table behind the decision, or a line when nothing was judged."""
    return result.get("table") or f"## {result['model_name']}: {summary(result)}\n"


def _record_run(result: gate.GateResult, decision: str, table: str) -> None:
    """Every number behind the decision, in the active MLflow run."""
    for role, scores in (("champion", result.champion), ("challenger", result.challenger)):
        for metric, s in (scores or {}).items():
            mlflow.log_metrics({f"{role}.test_{metric}": s.value, f"{role}.test_{metric}.low": s.low,
                                f"{role}.test_{metric}.high": s.high})
    if result.difference:
        mlflow.log_metrics({"difference": result.difference.value, "difference.low": result.difference.low,
                            "difference.high": result.difference.high})
    if result.p_value is not None:
        mlflow.log_metric("p_value", result.p_value)
    mlflow.set_tags({"transferflow.gate.decision": decision, "transferflow.gate.test": result.test_detail})
    mlflow.log_text(table, "promotion.md")
    mlflow.log_dict(result.as_dict(), "promotion.json")


if __name__ == "__main__":
    stage_cli(main)
