"""A registry of records that files of one package register when they are imported, each file imported
by name when its record is first asked for (strategies: tasks/strategies/, families:
transferflow/families/). So whoever validates names (the params schema) imports no record's code, and a
stage that uses one record runs that file and no other's.

Hand-written: importlib.metadata entry points would need the package installed and listed in
pyproject.toml; a folder of files is what adding one should cost.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Generic, Protocol, TypeVar


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    def __init__(self, package: str, kind: str):
        self.package, self.kind = package, kind
        self.records: dict[str, T] = {}
        """The records registered so far: those whose file was imported."""

    def register(self, record: T) -> T:
        """Add a record; names are unique snake_case words, each its file's name."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", record.name):
            raise ValueError(f"{self.kind} name {record.name!r} must be snake_case")
        if record.name in self.records:
            raise ValueError(f"{self.kind} {record.name!r} is registered twice")
        self.records[record.name] = record
        return record

    def names(self) -> list[str]:
        """Every file's name, sorted, without importing any."""
        package = importlib.import_module(self.package)
        return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))

    def get(self, name: str) -> T:
        """The record registered by the package's file `name`, imported on first use."""
        if name not in self.records:
            if name not in self.names():
                raise ValueError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
            importlib.import_module(f"{self.package}.{name}")
            if name not in self.records:
                raise ValueError(f"{self.package}.{name} registers no {self.kind} named {name!r}")
        return self.records[name]

    def all(self) -> dict[str, T]:
        """Every record, each file imported: for listings and the contract tests."""
        return {name: self.get(name) for name in self.names()}
