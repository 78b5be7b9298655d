"""Profiles: params.yaml composed from conf/config.yaml (the demo) and one overlay, conf/profile/<name>.yaml,
that holds only what the profile changes. Composition is Hydra's, as DVC does it for
`dvc exp run -S profile=<name>` (DVC's Hydra composition, enabled in .dvc/config), so the flow
(`transferflow run --profile <name>`) and dvc write the same params.yaml and then read only that.

    transferflow profile smoke             compose params.yaml (then `dvc repro` or `transferflow run`)
    transferflow run --profile smoke       compose, then run the flow
    dvc exp run -S profile=smoke           compose, then run the pipeline under dvc
"""

from __future__ import annotations

import os
from pathlib import Path

from transferflow.errors import ParamsError

CONF = Path(__file__).resolve().parents[1] / "conf"
"""Hydra's config folder: config.yaml and the profile group (DVC's default hydra.config_dir)."""


def profiles(conf: Path = CONF) -> list[str]:
    """The profile names: conf/profile/<name>.yaml."""
    return sorted(p.stem for p in (conf / "profile").glob("*.yaml"))


def compose(profile: str = "demo", overrides: list[str] | None = None, conf: Path = CONF) -> str:
    """params.yaml's text for `profile` plus Hydra `overrides` (e.g. `finetune.max_steps=50`): the
    calls of DVC's compose_and_dump (dvc/utils/hydra.py), through Hydra's public compose API."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    if profile not in profiles(conf):
        raise ParamsError(f"unknown profile {profile!r}; profiles: {', '.join(profiles(conf))} ({conf / 'profile'})")
    try:
        with initialize_config_dir(str(conf), version_base=None):
            config = hydra_compose(config_name="config", overrides=[f"profile={profile}", *(overrides or [])])
    except HydraException as err:
        raise ParamsError(f"cannot compose profile {profile!r}: {err}") from None
    OmegaConf.resolve(config)
    return OmegaConf.to_yaml(config)


def write_params(profile: str, path: Path = Path("params.yaml"), overrides: list[str] | None = None) -> Path:
    """Compose `profile` into `path` (params.yaml), replacing it, as `dvc exp run -S profile=...` does;
    only once the result validates, so a bad override leaves the old file as it was."""
    from transferflow.config import load_params

    path = Path(path)
    staged = path.with_name(f".{path.name}.composed")
    staged.write_text(compose(profile, overrides))
    try:
        load_params(staged)
    except ParamsError as err:
        staged.unlink()
        raise ParamsError(str(err).replace(str(staged), f"{path} (profile {profile})")) from None
    os.replace(staged, path)
    return path
