"""What a stage declares about itself, read by the Prefect flow (cache keys) and by the test that
keeps dvc.yaml and the flow in sync."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from transferflow.config import Params, load_params
from transferflow.files import fingerprint, read_json, write_json
from transferflow.tracking import tracking_uri


CACHE_STAMPS = Path("artifacts/.cache-stamps")
"""One small file per Prefect cache key: the content hash of the outputs that run wrote."""


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

    def for_item(self, item: str | None) -> StageSpec:
        """Fill `{item}` in paths, for stages run once per strategy (dvc.yaml foreach)."""
        if item is None:
            return self
        fill = lambda paths: tuple(p.replace("{item}", item) for p in paths)  # noqa: E731
        return StageSpec(self.name, self.params, fill(self.deps), fill(self.outs), fill(self.metrics),
                         fill(self.plots), self.optional_inputs)

    def resolve(self, params: Params) -> StageSpec:
        """Fill `${section.key}` in deps from `params`: the paths this run's data comes from."""
        fill = lambda path: re.sub(r"\$\{([\w.]+)\}", lambda m: str(_lookup(params, m.group(1))), path)  # noqa: E731
        optional = tuple(self.optional_inputs(params)) if self.optional_inputs else ()
        return StageSpec(self.name, self.params, (*map(fill, self.deps), *optional), self.outs, self.metrics,
                         self.plots)

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
        return f"{spec.name}-{item or 'all'}-{fingerprint(list(spec.deps))[:16]}-{params_hash[:16]}"


def _lookup(params: Params, dotted: str):
    """params value at a dvc-style dotted key such as `finetune.strategies`."""
    value = params
    for part in dotted.split("."):
        value = getattr(value, part)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


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
