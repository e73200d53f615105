"""Feedback records and their store.

A record says how an answer went: a rating (1-5) and/or an edited answer, with the prompt, the
original answer, tags, the model and lot that answered and when. Records are appended to one
JSONL file per expert, each line written with a single write and fsynced, so a crash loses at most
the record being written and never damages the ones before it; a torn last line is reported and
skipped, never trusted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from opensem.core.digests import canonical_json, sha256_text
from opensem.core.files import StatMemo, append_lines
from opensem.data.records import now
from opensem.errors import DataError, Location
from opensem.settings.fields import Section, invalid

FEEDBACK_FILE = "feedback.jsonl"


class FeedbackRecord(Section):
    """One piece of feedback on one answer."""

    prompt: str = Field(
        min_length=1, description="The question the expert was asked (the last user message)."
    )
    answer: str = Field(description="The answer the expert gave.")
    rating: int | None = Field(
        None, ge=1, le=5, description="How good the answer was, 1 (bad) to 5 (good)."
    )
    edited: str | None = Field(None, min_length=1, description="The answer as it should have been.")
    tags: list[str] = Field(
        default_factory=list, description="Free labels (tone, wrong-fact, ...)."
    )
    model: str | None = Field(None, description="The model name that answered.")
    lot: str | None = Field(None, description="Lot number of the release that answered.")
    completion_id: str | None = Field(None, description="The id the server gave the answer.")
    created: str = Field(
        default_factory=now, description="When the feedback was given (ISO 8601, UTC)."
    )

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackRecord:
        if self.rating is None and self.edited is None:
            raise invalid("feedback needs a rating (1-5), an edited answer, or both")
        if self.edited is not None and self.edited.strip() == self.answer.strip():
            raise invalid("the edited answer is the same as the answer; give a rating instead")
        return self

    @property
    def id(self) -> str:
        """A short digest of the record's content: equal feedback has one id."""
        return sha256_text(canonical_json(self.model_dump(mode="json")))[:16]


def feedback_file(folder: Path) -> Path:
    """The file feedback is appended to in folder."""
    return folder / FEEDBACK_FILE


def append_feedback(folder: Path, records: list[FeedbackRecord]) -> Path:
    """Append records durably (opensem.core.files.append_lines)."""
    path = feedback_file(folder)
    append_lines(path, [record_line(record) for record in records])
    return path


def record_line(record: Section) -> str:
    """A record as one JSON line: sorted keys, unset fields left out."""
    return json.dumps(
        record.model_dump(mode="json", exclude_none=True), ensure_ascii=False, sort_keys=True
    )


_READ = StatMemo()  # planning reads the feedback; the browser interface plans on every page


def read_feedback(path: Path, strict: bool = True) -> tuple[list[FeedbackRecord], list[str]]:
    """Records of one file and warnings (a torn last line). strict: any other bad line is a DataError
    naming its line; otherwise bad lines are warnings too (`feedback import` checks before appending).
    A file read before and unchanged since is not parsed again."""
    records, warnings = _READ.get(path, strict, lambda: _read_feedback(path, strict))
    return list(records), list(warnings)


def _read_feedback(path: Path, strict: bool) -> tuple[list[FeedbackRecord], list[str]]:
    records, warnings = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(FeedbackRecord.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            # An object that stops short: a write cut by a crash
            if line.lstrip().startswith("{") and not line.rstrip().endswith("}"):
                warnings.append(
                    f"{path}:{number}: an unfinished line (a write cut short) is skipped"
                )
                continue
            _bad(f"not JSON: {exc.msg}", path, number, strict, warnings)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or None
            _bad(first["msg"].removeprefix("Value error, "), path, number, strict, warnings, key)
    return records, warnings


def _bad(
    message: str, path: Path, line: int, strict: bool, warnings: list[str], key: str | None = None
) -> None:
    hint = 'each line is {"prompt": ..., "answer": ..., "rating": 1-5, "edited": ...} (rating or edited, or both)'
    if strict:
        raise DataError(message, Location(file=str(path), line=line, key=key), hint)
    warnings.append(f"{Location(file=str(path), line=line, key=key)}: {message}")


def read_folder(folder: Path) -> tuple[list[FeedbackRecord], list[str]]:
    """Every record under a feedback folder (all *.jsonl files, in name order)."""
    records, warnings = [], []
    for path in (
        sorted(folder.rglob("*.jsonl")) if folder.is_dir() else [folder] if folder.is_file() else []
    ):
        found, said = read_feedback(path)
        records.extend(found)
        warnings.extend(said)
    return records, warnings


def parse_rows(rows: list[dict[str, Any]], source: str) -> list[FeedbackRecord]:
    """Records from dicts (an import, a request body); every problem at once, by row."""
    records: list[Any] = []
    problems: list[Any] = []
    for index, row in enumerate(rows, start=1):
        try:
            records.append(FeedbackRecord.model_validate(row))
        except ValidationError as exc:
            problems.extend(
                f"{source}:{index}: {'.'.join(map(str, e['loc'])) or 'record'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
    if problems:
        raise DataError(
            "; ".join(problems[:10])
            + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""),
            Location(file=source),
            'each record is {"prompt": ..., "answer": ..., "rating": 1-5, "edited": ...}',
        )
    return records
