"""The golden set on the data page: typed, or picked from the generated pairs, then edited.

The interface edits one file, data/NAME/golden/golden.jsonl (the one the new-expert form writes).
A pair picked as a golden question leaves the training data in the same step: a delete action in
the edits log, so the expert is never scored on a question it was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opensem.core.files import write_atomic
from opensem.errors import DataError, Location

if TYPE_CHECKING:
    from opensem.ui.data import Pair

GOLDEN_FILE = "golden.jsonl"


def golden_file(root: Path, name: str) -> Path:
    """The golden set file the interface edits."""
    return root / "data" / name / "golden" / GOLDEN_FILE


def read_golden(path: Path) -> list[dict[str, str]]:
    """The rows of the file (question, answer, and whatever else they carry)."""
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"not JSON: {error.msg}",
                Location(str(path), number),
                "fix the line, or remove it and type the question again here",
            ) from None
        rows.append(row)
    return rows


def from_form(questions: Sequence[object], answers: Sequence[object]) -> list[dict[str, str]]:
    """The form's rows: empty ones dropped; a question without its answer is refused."""
    rows = []
    for question, answer in zip(questions, answers, strict=False):
        q, a = str(question).strip(), str(answer).strip()
        if not q and not a:
            continue
        if not q or not a:
            raise DataError(
                f"golden set: {(q or a)!r} needs {'its right answer' if q else 'a question'}",
                Location(key="golden"),
                "fill both, or empty both to remove the row",
            )
        rows.append({"question": q, "answer": a})
    return rows


def keep_extras(before: list[dict[str, str]], after: list[dict[str, str]]) -> list[dict[str, str]]:
    """The form's rows with what the form does not show (tags) kept from the row of the same
    question before."""
    extras = {str(row.get("question", "")).strip(): row for row in before}
    return [{**extras.get(row["question"], {}), **row} for row in after]


def save_golden(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the golden set in one step (a build reading it sees the old or the new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def suggest(pairs: list[Pair], taken: set[str], count: int) -> list[Pair]:
    """Up to count pairs for the golden set, taken in turn from each document so every one is
    asked about; only pairs as generated (an edited or approved pair is one a person wants to
    train on) whose question is not asked already."""
    fresh = [p for p in pairs if p.state == "as generated" and p.question.strip() not in taken]
    by_source: dict[str, list[Pair]] = {}
    for pair in fresh:
        by_source.setdefault(pair.source, []).append(pair)
    chosen: list[Pair] = []
    while len(chosen) < count and any(by_source.values()):
        for queue in by_source.values():
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen
