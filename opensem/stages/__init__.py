"""The registry of stage kinds: one module per kind, each registering itself by name."""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

from opensem.stages.base import StageKind

_REGISTRY: dict[str, StageKind] = {}
# Stage modules import nothing heavy at module level, so loading them all is cheap.
_MODULES = ("tiny_model", "ingest", "synthesize", "dedup", "split", "decontaminate", "train", "baseline", "evaluate", "gate", "publish")

K = TypeVar("K")


def register(cls: Callable[[], K]) -> Callable[[], K]:
    """Class decorator: add a stage kind to the registry under its unique name."""
    instance = cls()
    name = getattr(instance, "name")
    if name in _REGISTRY and type(_REGISTRY[name]) is not cls:
        raise ValueError(f"stage kind {name!r} is registered twice")
    _REGISTRY[name] = instance  # type: ignore[assignment]
    return cls


def get_stage(name: str) -> StageKind:
    """The registered stage kind called name; a kind lives in the module of the same name."""
    if name not in _REGISTRY and name in _MODULES:
        importlib.import_module(f"opensem.stages.{name}")
    if name not in _REGISTRY:
        for module in _MODULES:
            importlib.import_module(f"opensem.stages.{module}")
    return _REGISTRY[name]
