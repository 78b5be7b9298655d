"""Imports point down only, and no module imports itself round a cycle: transferflow (the library:
config, schema, models, training) < tasks (stages and strategy files) < flows (Prefect) < transferflow/cli.py
(the command). Function-level imports count too: they run all the same."""

from __future__ import annotations

from pathlib import Path

from transferflow.stage import imported_modules

REPO = Path(__file__).resolve().parents[1]
LAYERS = {"transferflow": 0, "tasks": 1, "flows": 2}
TOP = {"transferflow/cli.py": 3}
"""The command line sits above everything: it hands the flow to schedule and deploy."""


GRAPH = {str(p.relative_to(REPO)): imported_modules(str(p.relative_to(REPO)))
         for package in LAYERS for p in (REPO / package).rglob("*.py")}


def _layer(file: str) -> int:
    return TOP.get(file, LAYERS[file.split("/")[0]])


def test_imports_point_down():
    upward = sorted(f"{f} -> {d}" for f, deps in GRAPH.items() for d in deps if _layer(d) > _layer(f))
    assert not upward, upward


def test_no_import_cycles():
    state: dict[str, str] = {}
    path: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for dep in sorted(GRAPH.get(module, ())):
            if state.get(dep) == "open":
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, cycles


def test_the_schema_and_the_strategy_registry_import_no_deep_learning_library():
    """They sit at the bottom: every command imports them, and only a strategy's own file needs torch."""
    import subprocess
    import sys

    code = ("import sys; from transferflow.config import load_params; import transferflow.strategy; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
