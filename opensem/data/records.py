"""Records on disk: one JSON object per line (JSONL), read with the line each came from.

Every stage that reads or writes records goes through these two functions, so every malformed
line is reported the same way (file, line, what is wrong) and every written file has the same
bytes for the same records (sorted keys, UTF-8, one trailing newline per record).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opensem.core.files import write_atomic
from opensem.errors import DataError, Location


def now() -> str:
    """The current UTC time, to the second, in ISO format (when a record was made)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# A row check: returns what is wrong with a record (None when it is fine).
RowCheck = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class RecordSet:
    """Records read from one jsonl file, with the line each came from (for error locations)."""

    path: Path
    records: list[dict[str, Any]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.records)

    def head(self, count: int | None) -> RecordSet:
        """The first count records (all of them when count is None)."""
        if count is None:
            return self
        return RecordSet(self.path, self.records[:count], self.lines[:count])

    def where(self, index: int) -> Location:
        """The file and line of the record at index, for error messages."""
        return Location(file=str(self.path), line=self.lines[index])


def read_records(
    path: Path, check: RowCheck | None = None, hint: str = "", allow_empty: bool = True
) -> RecordSet:
    """Every JSON object of a jsonl file; DataError naming file and line for anything malformed.

    check, when given, is asked about each record; the first complaint fails the read with hint.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"no such records file: {path.name}",
            Location(file=str(path)),
            hint=hint or "check the upstream stage's output",
        )
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = Location(file=str(path), line=number)
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"not valid JSON: {exc.msg}",
                    where,
                    hint="each line of a .jsonl file must be one JSON object",
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"a record must be a JSON object, got {type(record).__name__}", where, hint=hint
                )
            problem = check(record) if check is not None else None
            if problem:
                raise DataError(problem, where, hint=hint)
            records.append(record)
            lines.append(number)
    if not records and not allow_empty:
        raise DataError(
            "the records file is empty",
            Location(file=str(path)),
            hint=hint or "check the upstream stages",
        )
    return RecordSet(path, records, lines)


def has_string_id(record: dict[str, Any]) -> str | None:
    """A row check for normalized records: each carries a string id."""
    return None if isinstance(record.get("id"), str) else "record has no string 'id'"


def render_records(records: Iterable[dict[str, Any]], sort_keys: bool = True) -> str:
    """Records as JSONL text (sorted keys by default, so equal records are equal bytes)."""
    return "".join(
        json.dumps(record, sort_keys=sort_keys, ensure_ascii=False) + "\n" for record in records
    )


def write_records(path: Path, records: Iterable[dict[str, Any]], sort_keys: bool = True) -> None:
    """Write records as jsonl in one atomic replace: equal records give equal bytes."""
    write_atomic(path, render_records(records, sort_keys))
