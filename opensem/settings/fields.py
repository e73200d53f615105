"""How a setting is defined once: one pydantic field, and the views derived from it.

A setting is a field of a manifest section: its type, default, bounds and description are the
field's, and so is the one mark this module adds: `run_setting(...)` for settings that say how to
run, not what to make (batch sizes for embedding, concurrency, checkpoint interval, trackers, VRAM
caps). Everything else enters the lot. Stage params are these same section models (or `pick`ed
views of them), so from one field follow the stage's params, the lot (`lot_view`), the run
settings handed to the stage beside it (`run_view`), the JSON Schema and the README reference.

Choices between alternatives with options of their own (training methods, teacher and judge
providers) are `tagged_union`s: each alternative declares its own options, and the registry of
alternatives is the union.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, PydanticUndefined

RUN_SETTING = "x-run-setting"  # the mark, as it appears in the JSON Schema
UNSET_KEEPS_LOTS = "x-unset-keeps-lots"


class Section(BaseModel):
    """A manifest section: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")

    def lot_exclusions(self) -> set[str]:
        """Fields whose value cannot change this stage's bytes given the other values (a model
        when embeddings are off, a path whose bytes are an input): out of the lot, handed to the
        stage with the run settings. None by default."""
        return set()


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (no "Value error, " prefix)."""
    return PydanticCustomError("opensem", "{message}", {"message": message})


def run_setting(default: Any = PydanticUndefined, **kwargs: Any) -> Any:
    """A field that says how to run, not what to make: never part of a lot number."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    return Field(default, json_schema_extra={**extra, RUN_SETTING: True}, **kwargs)


def is_run_setting(field: FieldInfo) -> bool:
    """Whether a field is a run setting (never part of a lot)."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(RUN_SETTING))


def unset_keeps_lots(**kwargs: Any) -> Any:
    """A field added to a stage's params after lots were recorded: while it is None it is left out
    of the lot, so every lot recorded before it existed stays valid."""
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    return Field(None, json_schema_extra={**extra, UNSET_KEEPS_LOTS: True}, **kwargs)


def _absent(field: FieldInfo, value: Any) -> bool:
    extra = field.json_schema_extra
    return value is None and isinstance(extra, dict) and bool(extra.get(UNSET_KEEPS_LOTS))


def lot_view(model: BaseModel) -> dict[str, Any]:
    """The model as JSON values, without run settings and lot exclusions, at every depth."""
    return _view(model, lot=True)


def run_view(model: BaseModel) -> dict[str, Any]:
    """What the lot view leaves out (run settings, lot exclusions), nested as in the model."""
    return _view(model, lot=False)


def _view(model: BaseModel, lot: bool) -> dict[str, Any]:
    dumped = model.model_dump(mode="json")
    excluded = model.lot_exclusions() if isinstance(model, Section) else set()
    view: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if _absent(field, value):
            continue
        if is_run_setting(field):  # a whole field (or section) of how-to-run
            if not lot:
                view[name] = dumped[name]
        elif isinstance(value, BaseModel):
            inner = _view(value, lot)
            if inner or lot:
                view[name] = inner
        elif lot != (name in excluded):
            view[name] = dumped[name]
    return view


def merge_views(lot: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The model's values again, from its lot view and its run view (the stage gets them all)."""
    merged = dict(lot)
    for key, value in run.items():
        merged[key] = (
            merge_views(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def pick(model: type[BaseModel], *names: str, name: str | None = None) -> type[BaseModel]:
    """A model of some fields of another, each the very same field (type, default, bounds, text)."""
    missing = [n for n in names if n not in model.model_fields]
    if missing:
        raise KeyError(f"{model.__name__} has no field {', '.join(missing)}")
    fields: dict[str, Any] = {
        n: (model.model_fields[n].annotation, model.model_fields[n]) for n in names
    }
    return create_model(name or f"{model.__name__}View", __base__=Section, **fields)


def field_like(model: type[BaseModel], name: str, **changes: Any) -> Any:
    """Another model's field with some of its arguments changed (a default, its text): its type and
    bounds stay defined once, where they are."""
    return FieldInfo.merge_field_infos(model.model_fields[name], **changes)


def tag_of(field: str, default: str) -> Callable[[Any], str]:
    """The discriminator of a tagged union: `<field>=<value>`, the default value when it is left out."""

    def discriminate(value: Any) -> str:
        chosen = (
            value.get(field, default) if isinstance(value, dict) else getattr(value, field, default)
        )
        return f"{field}={chosen}"

    return discriminate


class _TagRequiredOutsideDefault:
    """JSON Schema for a tagged union whose tag may be left out for the default alternative:
    every other alternative requires the tag, so exactly one alternative matches any value."""

    def __init__(self, field: str, default: str) -> None:
        self.field, self.default = field, default

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> Any:
        schema = handler(core_schema)
        for option in schema.get("oneOf", []):
            target = handler.resolve_ref_schema(option)
            if target.get("properties", {}).get(self.field, {}).get("const") != self.default:
                required = target.setdefault("required", [])
                if self.field not in required:
                    required.append(self.field)
        return schema


def tagged_union(members: Sequence[type[BaseModel]], field: str, default: str) -> Any:
    """One of members, chosen by the value of `field` (each member declares it as a Literal)."""
    tags = [(member, member.model_fields[field].default) for member in members]
    if default not in [value for _, value in tags]:
        raise ValueError(f"default {field} {default!r} is none of {[value for _, value in tags]}")
    options = tuple(Annotated[member, Tag(f"{field}={value}")] for member, value in tags)
    union = Union[options]  # type: ignore[valid-type]  # noqa: UP007 (a runtime tuple)
    return Annotated[
        union, Discriminator(tag_of(field, default)), _TagRequiredOutsideDefault(field, default)
    ]


def union_members(annotation: Any) -> list[type[BaseModel]]:
    """The model classes a (possibly Annotated, possibly Optional) union annotation can hold."""
    if isinstance(annotation, FieldInfo):
        annotation = annotation.annotation
    args: tuple[Any, ...] = getattr(annotation, "__args__", ())
    origin = getattr(annotation, "__origin__", None)
    if origin is Annotated:
        return union_members(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in args:
        found.extend(union_members(arg))
    return found


def union_tag(annotation: Any) -> tuple[str, str] | None:
    """(field, default) of a tagged union, or None: for an annotation, or a pydantic FieldInfo
    (which keeps an Annotated's metadata apart from its annotation)."""
    metadata = [
        *getattr(annotation, "__metadata__", ()),
        *(annotation.metadata if isinstance(annotation, FieldInfo) else ()),
    ]
    for meta in metadata:
        if isinstance(meta, _TagRequiredOutsideDefault):
            return meta.field, meta.default
    inner = annotation.annotation if isinstance(annotation, FieldInfo) else annotation
    for arg in getattr(inner, "__args__", ()):
        found = union_tag(arg)
        if found is not None:
            return found
    return None


class StageParams(Section):
    """Base of Params models a stage assembles from several sections (extra keys are errors)."""


def section_value(model: Any, key: str) -> Any:
    """The value at a dotted key of a validated model (None when a parent section is absent)."""
    value = model
    for part in key.split("."):
        if value is None:
            return None
        value = getattr(value, part)
    return value
