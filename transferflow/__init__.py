"""transferflow: pretrain-then-fine-tune NLP as a pipeline run by `dvc repro` and by Prefect flows."""

import os

# Nothing here phones home: Hugging Face telemetry and Prefect analytics would only time out offline.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Prefect's ephemeral server migrates a fresh SQLite database on first start, which takes longer than
# the default 20 s on a 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
