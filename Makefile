# The README's two commands: `make demo` (set up, then the demo pipeline end to end) and `make test`.
# Both create .venv on first use; set TORCH to another spec on a machine that has a GPU or another
# platform (for example TORCH="torch --index-url https://download.pytorch.org/whl/cpu").
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup data demo test

$(BIN)/transferflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: pinned to the CPU build so the package's "torch>=" requirement pulls no CUDA wheels
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/transferflow

data: setup
	# data.dvc only: pipeline outputs are rebuilt by the pipeline, not fetched from the remote
	$(BIN)/dvc pull data.dvc

demo: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/transferflow run --params params.yaml

# The venv's bin on PATH, as after `. .venv/bin/activate`: tests call dvc, and MLflow's scoring
# server starts uvicorn by name.
test: data
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest
