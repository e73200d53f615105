"""Manifest sections, declared by the stage kinds that read them, assembled into one model.

A stage kind lists the sections it owns (`sections = (section("training", TrainingConfig, ...),)`);
the manifest is the identity keys (job_id, base_model, ...) plus every declared section, in the
order of the pipeline. A dotted key nests: `curation.dedup` lands inside a `curation` group, and
`evaluation.gates` extends the `evaluation` section's own model. So a new stage kind with its own
section touches its own file and one line of the stage registry: the schema, the README reference
and validation follow from the assembled model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, create_model, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from opensem.settings.fields import Section


@dataclass(frozen=True)
class ManifestSection:
    """One key of the manifest and the pydantic field behind it."""

    key: str  # dotted: "training", "curation.dedup"
    annotation: Any
    field: FieldInfo


def section(
    key: str, annotation: Any, default: Any = PydanticUndefined, *, description: str, **kwargs: Any
) -> ManifestSection:
    """Declare a manifest section: its key, its type and the Field arguments (default, text, ...)."""
    return ManifestSection(key, annotation, Field(default, description=description, **kwargs))


def sections_from(
    model: type[BaseModel], *names: str, under: str = ""
) -> tuple[ManifestSection, ...]:
    """Sections that are fields of a stage's Params, as they are: a stage that takes a section whole
    declares it from its own field, so the section's type, default and text are written once."""
    return tuple(
        ManifestSection(
            f"{under}{name}", model.model_fields[name].annotation, model.model_fields[name]
        )
        for name in names
    )


@dataclass(frozen=True)
class Group:
    """A key that only holds sections of several stages (data, curation); its model is assembled."""

    title: str
    description: str


class GroupSection(Section):
    """Base of assembled groups: an explicit `null` means the same as leaving the group out."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data


@dataclass
class _Node:
    section: ManifestSection | None = None
    children: dict[str, _Node] = field(default_factory=dict)


def assemble(
    base: type[BaseModel], sections: list[ManifestSection], groups: dict[str, Group], title: str
) -> type[BaseModel]:
    """The manifest model: base's fields, then each section, nested by its dotted key."""
    root = _Node()
    for declared in sections:
        node = root
        for part in declared.key.split("."):
            node = node.children.setdefault(part, _Node())
        if node.section is not None:
            raise ValueError(f"manifest section {declared.key!r} is declared twice")
        node.section = declared
    fields = {name: _field(name, node, groups) for name, node in root.children.items()}
    clash = sorted(set(fields) & set(base.model_fields))
    if clash:
        raise ValueError(f"manifest sections {clash} collide with the manifest's own keys")
    return create_model(title, __base__=base, **fields)  # type: ignore[call-overload]


def _field(key: str, node: _Node, groups: dict[str, Group]) -> tuple[Any, FieldInfo]:
    children = {
        name: _field(f"{key}.{name}", child, groups) for name, child in node.children.items()
    }
    if node.section is None:
        if key not in groups:
            raise ValueError(
                f"manifest group {key!r} has no title and description (opensem.manifest.models.GROUPS)"
            )
        group = groups[key]
        grouped: Any = create_model(group.title, __base__=GroupSection, **children)  # type: ignore[call-overload]
        made: Any = Field(default_factory=grouped, description=group.description)
        return grouped, made
    declared = node.section
    if not children:
        return declared.annotation, declared.field
    if not (isinstance(declared.annotation, type) and issubclass(declared.annotation, BaseModel)):
        raise ValueError(f"manifest section {key!r} has sections below it, so it must be a model")
    model = create_model(  # type: ignore[call-overload]
        declared.annotation.__name__, __base__=declared.annotation, **children
    )
    info = declared.field
    default: dict[str, Any] = (
        {"default_factory": model}
        if info.default_factory is not None
        else {"default": info.default}
    )
    return model, Field(**default, description=info.description)
