"""Command-line options derived from a pydantic model, so a setting's default and text live once.

The model is named by its import path and loaded only when the command is parsed or its help is
shown: `opensem --help` and the no-op build path never import pydantic models they do not need.
"""

from __future__ import annotations

import importlib
import typing
from typing import Any

import click


def _load(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def options_for(model: Any, aliases: dict[str, tuple[str, ...]] | None = None) -> list[click.Option]:
    """One --option per scalar field of model: its type, default and description."""
    options = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if kind not in (int, float, str, bool):
            kind = next((arg for arg in typing.get_args(kind) if arg in (int, float, str, bool)), None)
        if kind is None:
            continue
        flag = "--" + name.replace("_", "-")
        names = [flag, *(aliases or {}).get(name, ())]
        if kind is bool:
            names = [f"{flag}/--no-{name.replace('_', '-')}"]
        options.append(click.Option([*names, name], type=kind, default=field.default, show_default=True, help=field.description))
    return options


class ModelOptionsCommand(click.Command):
    """A command whose options are the fields of a pydantic model, added on first use."""

    def __init__(self, *args: Any, model: str, aliases: dict[str, tuple[str, ...]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_path = model
        self.aliases = aliases
        self._derived = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._derived:
            self.params.extend(options_for(_load(self.model_path), self.aliases))
            self._derived = True
        return super().get_params(ctx)
