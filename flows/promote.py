"""The promotion gate as a Prefect flow of its own, for a promotion without retraining.

    transferflow promote [--params params.yaml]

The training flow (flows/pipeline.py) ends with the same task, so a scheduled run promotes on its own.
Both publish the side-by-side table as the Prefect artifact `promotion`.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.pipeline import TASKS
from tasks import promote as promote_stage
from transferflow.config import load_params


@flow(name="promote")
def promote(params_file: str = "params.yaml") -> dict:
    """Compare the challenger (this workspace's registration, else @challenger) with @champion on the test
    split; promote only if every gate passes."""
    # The pipeline's own task: never cached, since the answer depends on the registry's state.
    result = TASKS["promote"](load_params(params_file))
    get_run_logger().info("promotion gate: %s", promote_stage.summary(result))
    create_markdown_artifact(key="promotion", markdown=promote_stage.markdown(result),
                             description=f"Promotion gate: {result['decision']}")
    return result
