"""The errors a user can cause or a fault can raise, by kind. The CLI prints any of them as one
`error:` line (exit code 2 for bad params, 1 for the rest); the Prefect flow retries a stage only on
the transient kind (flows/pipeline.py:retry_if_transient)."""

from __future__ import annotations


class TransferflowError(Exception):
    """Base: a problem named in one line, with what to do about it."""

    transient = False
    """Whether trying again can help (a server restarting, a download cut off)."""
    exit_code = 1


class ParamsError(TransferflowError, ValueError):
    """params.yaml is missing, not YAML, or does not match the schema."""

    exit_code = 2


class DataError(TransferflowError):
    """Data is missing or not in the expected shape: a raw dataset (transferflow/data.py) or a prepared split."""


class TrainingError(TransferflowError):
    """Training cannot give a usable model (the loss diverged)."""


class TrackingUnavailable(TransferflowError):
    """The MLflow tracking store cannot be reached: nothing is trained until it can."""

    transient = True


class RegistryError(TransferflowError):
    """The registry is not in a state the command can act on (no champion, nothing to roll back to)."""
