"""What a stage declares about itself: the one declaration that the Prefect flow reads (cache keys) and
that dvc.yaml is generated from (flows/dvc_yaml.py).

A stage declares its params, data deps and outputs; its code deps are not declared but read off the
imports of tasks/<stage>.py (code_deps), so dvc.yaml names every module whose code a stage runs and
no other: a change to one re-runs exactly the stages that run it, under dvc and in the flow.
"""

from __future__ import annotations

import argparse
import ast
import glob
import hashlib
import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from transferflow.config import Params, load_params
from transferflow.files import fingerprint, read_json, write_json
from transferflow.tracking import tracking_uri


CACHE_STAMPS = Path("artifacts/.cache-stamps")
"""One small file per Prefect cache key: the content hash of the outputs that run wrote."""

def _stages_root() -> Path:
    """The folder that holds tasks/, found through the import system rather than beside this file: this
    module may be running from the copy of transferflow/ that a served model ships (MLflow code_paths,
    put first on sys.path when a model is loaded in this process), which has no tasks/ beside it."""
    return Path(importlib.util.find_spec("tasks").origin).resolve().parents[1]


REPO = _stages_root()
"""Where the stages' code lives; code deps are named relative to it, as dvc.yaml names them."""

PLUMBING = frozenset({"transferflow/__init__.py", "transferflow/config.py", "transferflow/schema.py",
                      "transferflow/stage.py", "transferflow/tracking.py", "transferflow/files.py",
                      "transferflow/errors.py"})
"""Modules every stage uses that change no stage's result: environment defaults, the params schema and
its base (the values themselves are params deps), stage declarations, MLflow runs, writing and reading
outputs, and the error types. Not code deps, so editing them re-runs nothing."""

LOADED_BY_NAME = frozenset({"tasks/strategies", "transferflow/families"})
"""Packages whose modules are imported by name from params (the strategy and family registries), not by an import
statement: importing the package runs its __init__.py only; a stage names the modules it loads in
StageSpec.loads."""


@dataclass(frozen=True)
class StageSpec:
    name: str
    """dvc.yaml stage name == tasks/<name>.py == params.yaml key."""
    params: tuple[str, ...]
    """params.yaml sections the stage reads (dvc.yaml `params:`)."""
    deps: tuple[str, ...]
    """Files and folders whose content the stage depends on (dvc.yaml `deps:`). `${section.key}` names
    a params value, as DVC's templating does: data deps follow the params rather than naming paths."""
    outs: tuple[str, ...]
    """What the stage writes for later stages (dvc.yaml `outs:`)."""
    metrics: tuple[str, ...] = ()
    """Small JSON files of figures (dvc.yaml `metrics:`, not cached)."""
    plots: tuple[str, ...] = ()
    """Data files DVC renders as plots (dvc.yaml `plots:`)."""
    optional_inputs: Callable[[Params], list[str]] | None = None
    """Paths the stage reads only under some params (pretrain.init_from's checkpoint): hashed into the
    flow's cache key when given. dvc.yaml cannot list a path that may be null; its params dep sees
    the setting, not the content."""
    foreach: str | None = None
    """A params list the stage runs once per item of (dvc.yaml `foreach`); `{item}` in params, loads and
    paths stands for the item."""
    loads: tuple[str, ...] = ()
    """Code the stage imports by name rather than by an import statement (see LOADED_BY_NAME): a folder
    of modules, or one module per item such as `tasks/strategies/{item}.py`."""
    plot_props: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """dvc.yaml properties of each plot file (x, y, template)."""
    always_changed: bool = False
    """The stage reads state that no dep shows (the registry's aliases): dvc runs it every time and the
    flow never caches it."""

    @property
    def code(self) -> tuple[str, ...]:
        """The modules whose code the stage runs, read off the imports: its code deps. For one item
        (for_item), that item's module and what it imports; dvc.yaml's template names the union over
        all items, so dvc may re-run a fine-tune that the flow's sharper cache key keeps."""
        return code_deps(self.name, self.loads)

    @property
    def all_deps(self) -> tuple[str, ...]:
        """Code deps, then data deps: dvc.yaml's `deps:`."""
        return (*self.code, *self.deps)

    def for_item(self, item: str | None) -> StageSpec:
        """Fill `{item}` in params and paths, for stages run once per strategy (dvc.yaml foreach)."""
        if item is None:
            return self
        fill = lambda paths: tuple(p.replace("{item}", item) for p in paths)  # noqa: E731
        return replace(self, params=fill(self.params), deps=fill(self.deps), outs=fill(self.outs),
                       metrics=fill(self.metrics), plots=fill(self.plots), loads=fill(self.loads))

    def resolve(self, params: Params) -> StageSpec:
        """Fill `${section.key}` in deps from `params`: the paths this run's data comes from."""
        fill = lambda path: re.sub(r"\$\{([\w.]+)\}", lambda m: str(_lookup(params, m.group(1))), path)  # noqa: E731
        optional = tuple(self.optional_inputs(params)) if self.optional_inputs else ()
        return replace(self, deps=(*map(fill, self.deps), *optional), optional_inputs=None)

    def outputs_exist(self, item: str | None = None) -> bool:
        """Whether every output is on disk."""
        return all(Path(out).exists() for out in self.for_item(item).outs)

    def outputs_fingerprint(self, item: str | None = None) -> str:
        """Content hash of what the stage wrote: outs, metrics and plots."""
        spec = self.for_item(item)
        return fingerprint([*spec.outs, *spec.metrics, *spec.plots])

    def record_outputs(self, key: str, item: str | None = None) -> None:
        """After the stage ran under cache `key`: remember the outputs that run left on disk."""
        write_json(CACHE_STAMPS / f"{key}.json", {"outputs": self.outputs_fingerprint(item)})

    def cached_outputs_intact(self, key: str, item: str | None = None) -> bool:
        """Whether a cached result under `key` may be trusted: the outputs on disk are still the ones
        the run that made it wrote. All runs share one artifacts/ tree, so a run with other params or
        data may have rewritten them since; then the key still matches but the files do not."""
        stamp = CACHE_STAMPS / f"{key}.json"
        return (self.outputs_exist(item) and stamp.is_file()
                and read_json(stamp).get("outputs") == self.outputs_fingerprint(item))

    def cache_key(self, params: Params, item: str | None = None) -> str:
        """Key under which Prefect may skip this stage: its params and the content of its deps."""
        spec = self.for_item(item).resolve(params)
        # The tracking store is part of the key: a run against another store must log (and register) there.
        section = {name: _lookup(params, name) for name in spec.params} | {"tracking_uri": tracking_uri()}
        params_hash = hashlib.sha256(json.dumps(section, sort_keys=True, default=str).encode()).hexdigest()
        return f"{spec.name}-{item or 'all'}-{fingerprint(list(spec.all_deps))[:16]}-{params_hash[:16]}"


def _lookup(params: Params, dotted: str):
    """params value at a dvc-style dotted key such as `finetune.strategies` or `finetune.options.lora`."""
    value: Any = params
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _module_file(dotted: str) -> str | None:
    for candidate in (f"{dotted.replace('.', '/')}.py", f"{dotted.replace('.', '/')}/__init__.py"):
        if (REPO / candidate).is_file():
            return candidate
    return None


def imported_modules(file: str) -> set[str]:
    """Repo modules (files) that `file` imports, at top level or inside functions; not those under
    `if TYPE_CHECKING:`, which never run (annotations only)."""
    names = set()
    tree = ast.parse((REPO / file).read_text())
    annotations_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                        and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                        for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {f for f in map(_module_file, names) if f and f != file}


def _imports(file: str) -> set[str]:
    """What `file` imports, as code deps: importing a package imports the whole folder
    (transferflow/metrics loads its metric scripts by path), except for a package of modules loaded by
    name (LOADED_BY_NAME), which is its __init__.py alone."""
    return {str(Path(f).parent) if f.endswith("/__init__.py") and f not in PLUMBING
            and str(Path(f).parent) not in LOADED_BY_NAME else f for f in imported_modules(file)}


def _python_files(path: str) -> list[str]:
    """A module, or every module under a folder."""
    if path.endswith(".py"):
        return [path]
    return sorted(str(p.relative_to(REPO)) for p in (REPO / path).rglob("*.py"))


@lru_cache(maxsize=None)
def code_deps(stage: str, loads: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every repo module tasks/<stage>.py runs, following imports, and the code it loads by name: files
    and whole package folders, the stage's own module first. A per-item load (`{item}` in the path)
    stays a template: the code of every item's module is followed, but only the item's file is named."""
    per_item = [load for load in loads if "{item}" in load]
    item_files = {str(Path(p).relative_to(REPO)) for load in per_item
                  for p in map(Path, glob.glob(str(REPO / load.replace("{item}", "*"))))
                  if not p.name.startswith("_")}
    seen: set[str] = set()
    todo = [f"tasks/{stage}.py", *item_files, *(load for load in loads if load not in per_item)]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current not in PLUMBING:  # a folder is named whole: its modules' imports are followed
            todo += [name for module in _python_files(current) for name in _imports(module)]
    folders = [d for d in seen if not d.endswith(".py")]
    named = {f for f in seen - PLUMBING - item_files if not any(f.startswith(f"{d}/") for d in folders)}
    own = f"tasks/{stage}.py"
    return (own, *sorted(named - {own}), *per_item)


def stage_cli(main: Callable[..., object], with_item: bool = False) -> None:
    """`python -m tasks.<stage> [--params FILE] [ITEM]`: the entry point dvc.yaml runs."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    if with_item:
        parser.add_argument("item", help="which one (e.g. the fine-tuning strategy)")
    args = parser.parse_args()
    params = load_params(args.params)
    if with_item:
        main(params, args.item)
    else:
        main(params)
