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


def options_for(
    model: Any, aliases: dict[str, tuple[str, ...]] | None = None
) -> list[click.Option]:
    """One --option per field of model whose type a command line can hold: its type (a choice for a
    Literal, repeatable for a list), default and description."""
    options = []
    for name, field in model.model_fields.items():
        kind, multiple = _click_type(field.annotation)
        if kind is None:
            continue
        default = field.default_factory() if field.default_factory is not None else field.default
        flag = "--" + name.replace("_", "-")
        names = [flag, *(aliases or {}).get(name, ())]
        if kind is bool:
            names = [f"{flag}/--no-{name.replace('_', '-')}"]
        options.append(
            click.Option(
                [*names, name],
                type=kind,
                multiple=multiple,
                default=default,
                show_default=not multiple,
                help=field.description,
            )
        )
    return options


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, repeatable) for a field's annotation; (None, False) for what a flag cannot hold."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (int, float, str, bool):
        return annotation, False
    if origin is typing.Literal:
        return click.Choice([str(a) for a in args]), False
    if origin is list and args and args[0] in (int, float, str):
        return args[0], True
    scalars = [a for a in args if a is not type(None)]
    if len(scalars) == 1:  # Optional[X]
        return _click_type(scalars[0])
    return None, False


class ModelOptionsCommand(click.Command):
    """A command whose options are the fields of a pydantic model, added on first use."""

    def __init__(
        self,
        *args: Any,
        model: str,
        aliases: dict[str, tuple[str, ...]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.model_path = model
        self.aliases = aliases
        self._derived = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """The manifest's options, derived from its model on first use so `--help` stays fast."""
        if not self._derived:
            self.params.extend(options_for(_load(self.model_path), self.aliases))
            self._derived = True
        return super().get_params(ctx)


def settings_from(model: Any, values: dict[str, Any], command: str) -> Any:
    """The model from a command's options (repeatable ones arrive as tuples); every bad value at once."""
    from pydantic import ValidationError

    from opensem.errors import UsageError

    try:
        return model(**{k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()})
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-') or 'settings'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise UsageError(f"invalid settings: {problems}", hint=f"see `{command} --help`") from None
