"""The base of every params schema: config sections (transferflow/config.py) and strategy options
(transferflow/strategy.py) alike."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, field_validator


def _types(annotation: Any) -> set:
    """Every type named in an annotation: `int | None` -> {int, NoneType}."""
    args = get_args(annotation)
    return {t for arg in args for t in _types(arg)} if args else {annotation}


class NoBoolNumbers(BaseModel):
    """YAML reads `max_steps: true` as a bool, and pydantic (lax) would take it as 1 for an int field:
    refused here, for every field that holds a number and not a bool. Lax mode stays on otherwise,
    since PyYAML reads `1e-3` (no dot) as a string that must still parse as a float."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info) -> Any:
        types = _types(cls.model_fields[info.field_name].annotation)
        if isinstance(value, bool) and bool not in types and types & {int, float}:
            raise ValueError(f"expected a number, got {str(value).lower()}")
        return value
