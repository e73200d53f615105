"""The registry of training methods: one module per method, each registering itself by name.

Method modules import nothing heavy at module level, so loading them all to list names is cheap.
"""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

from opensem.errors import UsageError
from opensem.training.methods.base import Method

_REGISTRY: dict[str, Method] = {}
_MODULES = ("sft", "lora", "dora", "qlora", "dpo", "orpo", "kto")
_loaded = False

M = TypeVar("M")


def register_method(cls: Callable[[], M]) -> Callable[[], M]:
    """Class decorator: add a training method to the registry under its unique name."""
    instance = cls()
    name = getattr(instance, "name")
    if name in _REGISTRY and type(_REGISTRY[name]) is not cls:
        raise ValueError(f"training method {name!r} is registered twice")
    _REGISTRY[name] = instance  # type: ignore[assignment]
    return cls


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for module in _MODULES:
            importlib.import_module(f"opensem.training.methods.{module}")
        _loaded = True


def method_names() -> list[str]:
    """Names of all registered methods, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get_method(name: str) -> Method:
    """The method registered under name; UsageError listing the known ones otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown training method {name!r}", hint=f"known methods: {', '.join(sorted(_REGISTRY))}"
        ) from None
