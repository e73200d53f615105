"""One registry helper for everything that plugs in by name: stage kinds, training methods, providers.

A plugin is a class with a `name`, living in a module of its own that registers it with the
registry's decorator. The registry lists its modules once; they are imported on first use, and
plugins come back in that order (for stage kinds, the order of the pipeline). Registering two
different classes under one name is an error, and asking for an unknown name says what exists.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Generic, TypeVar

from opensem.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(
        self,
        what: str,
        package: str,
        modules: Sequence[str],
        instantiate: bool = True,
        outside_before: str | None = None,
    ) -> None:
        self.what = what  # "stage kind", "training method", ... for messages
        self.package = package
        self.modules = tuple(modules)
        self.instantiate = instantiate  # store cls() (stateless plugins) or the class itself
        # Plugins from elsewhere come before this module's (publish stays last), else after all.
        self.outside_rank = (
            self.modules.index(outside_before) - 0.5 if outside_before else len(self.modules)
        )
        self._entries: dict[str, tuple[type, T]] = {}
        self._loaded = False

    def register(self, cls: type) -> type:
        """Class decorator: add a plugin under its `name`; the same class twice is harmless."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.what} needs a class attribute `name`")
        earlier = self._entries.get(name)
        if earlier is not None and earlier[0].__qualname__ != cls.__qualname__:
            raise ValueError(
                f"{self.what} {name!r} is registered twice ({earlier[0].__module__} and {cls.__module__})"
            )
        self._entries[name] = (cls, cls() if self.instantiate else cls)  # type: ignore[assignment]
        return cls

    def _load(self) -> None:
        if not self._loaded:
            for module in self.modules:
                importlib.import_module(f"{self.package}.{module}")
            self._loaded = True

    def get(self, name: str) -> T:
        """The plugin called name; UsageError listing the known ones otherwise."""
        if name not in self._entries:
            self._load()
        try:
            return self._entries[name][1]
        except KeyError:
            raise UsageError(
                f"unknown {self.what} {name!r}", hint=f"known: {', '.join(self.names())}"
            ) from None

    def all(self) -> list[T]:
        """Every plugin, in the order of the registry's modules (plugins from elsewhere at `outside_rank`)."""
        self._load()
        order: dict[str, float] = {
            f"{self.package}.{module}": index for index, module in enumerate(self.modules)
        }
        ranked = sorted(
            self._entries.values(),
            key=lambda entry: order.get(entry[0].__module__, self.outside_rank),
        )
        return [plugin for _, plugin in ranked]

    def names(self) -> list[str]:
        """Names of every plugin, in registry order."""
        return [str(getattr(plugin, "name")) for plugin in self.all()]  # noqa: B009 (T has no bound)
