"""A persona: one system message (a style guide) put before every example the expert trains on,
every question it is evaluated on, and every chat it answers when served.

Written in the manifest as `persona: {system: "..."}` or `persona: {file: style.md}`; the stages
get the text itself, so editing the file is a lot change of train, baseline and evaluate, as
editing the inline text is. The trained adapter carries it (system_prompt.txt) to the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from opensem.settings.fields import Section, invalid, unset_keeps_lots

SYSTEM_PROMPT_FILE = "system_prompt.txt"


class Persona(Section):
    system: str | None = Field(None, min_length=1, description="The system message itself.")
    file: str | None = Field(
        None, description="A text file holding it, relative to the project root."
    )

    @model_validator(mode="after")
    def _one(self) -> Persona:
        if (self.system is None) == (self.file is None):
            raise invalid(
                "give the persona as `system: <text>` or as `file: <path>`, one of the two"
            )
        return self


def persona_field() -> Any:
    """The resolved system message as a stage param: out of the lot while there is none."""
    return unset_keeps_lots(
        description="System message before every example and question (the manifest's persona, resolved)."
    )


def resolve_persona(persona: Persona | None, project_root: Path) -> str | None:
    """The persona's text (read from its file when it has one); None without a persona."""
    if persona is None:
        return None
    text = (
        persona.system
        if persona.system is not None
        else (project_root / str(persona.file)).read_text(encoding="utf-8")
    )
    return text.strip() or None


def with_system(messages: Sequence[dict[str, str]], system: str | None) -> list[dict[str, str]]:
    """Messages that start with the system message (unless they already have one of their own)."""
    if not system or (messages and messages[0].get("role") == "system"):
        return list(messages)
    return [{"role": "system", "content": system}, *messages]


def records_with_persona(records: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """Training records with the persona: chats get it as their first message, preference and
    feedback records carry it for their prompt; documents stay as they are."""
    if not system:
        return records
    out = []
    for record in records:
        if "messages" in record:
            out.append({**record, "messages": with_system(record["messages"], system)})
        elif "prompt" in record:
            out.append({**record, "system": record.get("system", system)})
        else:
            out.append(record)
    return out


def items_with_persona(items: Sequence[Any], system: str | None) -> list[Any]:
    """Evaluation items asked under the persona (opensem.evaluation.items.Item)."""
    return (
        [replace(item, messages=tuple(with_system(item.messages, system))) for item in items]
        if system
        else list(items)
    )
