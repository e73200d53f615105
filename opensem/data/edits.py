"""A person's corrections of generated pairs, kept as an append-only log like feedback.

Each line of data/<job_id>/edits/edits.jsonl is one action on one record, by the record's id:
`edit` (a new question, a new answer, or both), `delete`, or `approve` (seen and kept as it is).
The newest action on a record wins. Applying them keeps each record's id, so an edited pair stays
on its side of the train/test split; an action whose record is gone (the text it was made from
changed upstream, so its id did) is counted as stale, never applied to another record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from opensem.core.files import append_lines
from opensem.data.records import now
from opensem.errors import DataError, Location
from opensem.settings.fields import Section, invalid

EDITS_FILE = "edits.jsonl"
Action = Literal["edit", "delete", "approve"]


class EditAction(Section):
    """One action on one generated record."""

    id: str = Field(min_length=1, description="The id of the record acted on.")
    action: Action = Field(description="edit, delete or approve.")
    question: str | None = Field(None, min_length=1, description="The new question (edit).")
    answer: str | None = Field(None, min_length=1, description="The new answer (edit).")
    created: str = Field(default_factory=now, description="When (ISO 8601, UTC).")

    @model_validator(mode="after")
    def _edit_changes_something(self) -> EditAction:
        if self.action == "edit" and self.question is None and self.answer is None:
            raise invalid("an edit needs a new question, a new answer, or both")
        return self


def append_edits(folder: Path, actions: list[EditAction]) -> Path:
    """Append actions to the log in folder, durably."""
    path = folder / EDITS_FILE
    lines = [
        json.dumps(a.model_dump(mode="json", exclude_none=True), sort_keys=True) for a in actions
    ]
    append_lines(path, lines)
    return path


def read_edits(folder: Path) -> dict[str, EditAction]:
    """The newest action per record id of every *.jsonl under folder; DataError naming a bad line."""
    newest: dict[str, EditAction] = {}
    files = sorted(folder.rglob("*.jsonl")) if folder.is_dir() else [folder]
    for path in files if folder.exists() else []:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                action = EditAction.model_validate(json.loads(line))
            except ValueError as error:
                raise DataError(
                    f"not an edit: {str(error).splitlines()[0]}",
                    Location(file=str(path), line=number),
                    'each line is {"id", "action": edit|delete|approve, "question"?, "answer"?}',
                ) from None
            newest[action.id] = action
    return newest


def apply_edits(
    records: list[dict[str, Any]], actions: dict[str, EditAction]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records with the actions applied, in order; and counts of what was done."""
    counts = {"records": len(records), "edited": 0, "deleted": 0, "approved": 0, "stale": 0}
    ids = {str(record["id"]) for record in records}
    counts["stale"] = sum(1 for key in actions if key not in ids)
    kept = []
    for record in records:
        action = actions.get(str(record["id"]))
        if action is None:
            kept.append(record)
        elif action.action == "delete":
            counts["deleted"] += 1
        elif action.action == "approve":
            counts["approved"] += 1
            kept.append(record)
        else:
            counts["edited"] += 1
            kept.append(edited(record, action))
    return kept, counts


def edited(record: dict[str, Any], action: EditAction) -> dict[str, Any]:
    """An instruction record with its first user message and last assistant message replaced."""
    if "messages" not in record:
        raise DataError(
            f"record {record['id']} is not a question/answer pair; only pairs can be edited",
            hint="delete it instead, or edit the document it came from",
        )
    messages = [dict(m) for m in record["messages"]]
    user = next((m for m in messages if m.get("role") == "user"), None)
    reply = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    if action.question is not None and user is not None:
        user["content"] = action.question
    if action.answer is not None and reply is not None:
        reply["content"] = action.answer
    return {**record, "messages": messages}


def pair_of(record: dict[str, Any]) -> tuple[str, str] | None:
    """(question, answer) of an instruction record; None for other kinds."""
    messages = record.get("messages")
    if not isinstance(messages, list):
        return None
    question = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
    answer = next(
        (m.get("content", "") for m in reversed(messages) if m.get("role") == "assistant"), ""
    )
    return str(question), str(answer)
