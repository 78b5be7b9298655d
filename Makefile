# The README's two commands: `make demo` (set up, then the demo pipeline end to end) and `make test`.
# Both create .venv on first use and install exactly requirements.lock into it (uv, hashes checked);
# `make lock` re-resolves the lock to the newest releases that pyproject.toml's ranges allow.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
LOCK := requirements.lock
# uv is bootstrapped with pip at this version; it installs the lock in seconds where pip takes minutes.
UV_VERSION := 0.13.9
# The lock pins the CPU build of torch (torch==...+cpu), which PyPI does not serve. uv looks for it in
# TORCH_WHEELS, a folder of wheels (this machine keeps it in /opt/wheels); elsewhere point uv at the
# PyTorch CPU index: make setup TORCH_WHEELS= UV_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_WHEELS ?= $(wildcard /opt/wheels)
FIND_LINKS := $(if $(TORCH_WHEELS),--find-links $(TORCH_WHEELS))

.PHONY: setup lock data demo test services services-stop postgresql

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "uv==$(UV_VERSION)"

$(BIN)/transferflow: $(LOCK) pyproject.toml | $(UV)
	# exactly the lock: what is missing is installed, what differs or is not in it is removed
	$(UV) pip sync --python $(BIN)/python --require-hashes $(FIND_LINKS) $(LOCK)
	# transferflow itself, editable; its dependencies are all in the lock already
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(BIN)/transferflow

# The newest releases within pyproject.toml's ranges, torch held by lock-constraints.txt, for
# CPython 3.11 on x86_64 Linux (the machines this project runs and is tested on). Run `make test`
# next: what breaks is fixed or capped in pyproject.toml with a comment saying why.
lock: | $(UV)
	$(UV) pip compile pyproject.toml --extra dev --upgrade --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--constraint lock-constraints.txt $(FIND_LINKS) --output-file $(LOCK)

data: setup
	# data.dvc only: pipeline outputs are rebuilt by the pipeline, not fetched from the remote
	$(BIN)/dvc pull data.dvc

demo: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/transferflow run --params params.yaml

# The venv's bin on PATH, as after `. .venv/bin/activate`: tests call dvc, and MLflow's scoring
# server starts uvicorn by name. The whole suite, `slow` end-to-end runs included (CI runs this);
# a plain `pytest` leaves them out (pyproject.toml), for a quicker loop while editing.
test: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "not gpu"

# A team's servers on this machine (transferflow/services.py): PostgreSQL, MLflow and Prefect on it, bound
# to 127.0.0.1, state in .services/. Ends by printing the two `export` lines to paste. Harmless twice.
services: setup
	$(BIN)/transferflow services start

services-stop: setup
	$(BIN)/transferflow services stop

# Debian's PostgreSQL server, which `make services` and tests/test_services.py run (root: apt-get).
postgresql:
	@if command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "PostgreSQL server: installed"; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi
