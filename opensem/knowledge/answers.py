"""Answering from sources, and the log of answers given.

The model sees the retrieved chunks numbered [1]..[k] before the question and is asked to cite
them. The answer's text ends with its sources (`Sources: [1] docs/a.pdf p. 3, ...`), so a reader
of the text alone still knows where it came from. Every answer is appended to
data/<job_id>/answers/answers.jsonl with the question, the sources (chunk ids and digests), the
lots of the model and the index, and when; `opensem answers` lists them and turns one into
feedback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.core.digests import sha256_text
from opensem.core.files import append_lines
from opensem.data.records import now
from opensem.errors import DataError, Location, UsageError
from opensem.feedback.records import record_line
from opensem.knowledge.index import Hit
from opensem.settings.fields import Section

ANSWERS_FILE = "answers.jsonl"
INSTRUCTIONS = (
    "Answer the question from the numbered sources. Cite the sources you use like [1]. "
    "If the sources do not answer it, say that you do not know."
)
DONT_KNOW = "I do not know: none of the documents I have covers this question."
CITATION = re.compile(r"\[(\d{1,2})\]")


def cite(hit: Hit) -> str:
    """Where a hit is, as a citation: file, and page for a PDF."""
    page = f" p. {hit.chunk.page}" if hit.chunk.page is not None else ""
    return f"{hit.chunk.source}{page}"


def with_sources(messages: list[dict[str, str]], hits: list[Hit]) -> list[dict[str, str]]:
    """The chat with the numbered sources put before the last user message."""
    if not hits:
        return messages
    numbered = "\n\n".join(f"[{n}] ({cite(h)}) {h.chunk.text}" for n, h in enumerate(hits, 1))
    *before, last = messages
    question = f"{INSTRUCTIONS}\n\nSources:\n{numbered}\n\nQuestion: {last['content']}"
    return [*before, {**last, "content": question}]


def sources_line(hits: list[Hit]) -> str:
    """The sources as the answer's last line."""
    return "Sources: " + "; ".join(f"[{n}] {cite(h)}" for n, h in enumerate(hits, 1))


def cited(answer: str, hits: list[Hit]) -> list[Hit]:
    """The hits the answer cites by number; all of them when it cites none (they are listed)."""
    numbers = sorted({int(n) for n in CITATION.findall(answer) if 1 <= int(n) <= len(hits)})
    return [hits[n - 1] for n in numbers] if numbers else list(hits)


class Source(Section):
    """A source an answer was given with."""

    n: int = Field(ge=1, description="Its number in the answer.")
    chunk: str = Field(description="The chunk's id.")
    digest: str = Field(description="SHA256 of the chunk's text, as it was.")
    source: str = Field(description="The document's project path.")
    page: int | None = Field(None, description="Its page, for a PDF.")
    score: float = Field(description="Cosine similarity of the chunk to the question.")
    snippet: str = Field(description="The chunk's first words.")


class AnswerRecord(Section):
    """One answer given with sources."""

    question: str = Field(min_length=1)
    answer: str
    sources: list[Source] = Field(default_factory=list)
    model: str | None = Field(None, description="The model name that answered.")
    lot: str | None = Field(None, description="Lot number of the release that answered.")
    index_lot: str | None = Field(None, description="Lot number of the knowledge base searched.")
    created: str = Field(default_factory=now)

    @property
    def id(self) -> str:
        """A short digest of the record: what `answers feedback` names."""
        return sha256_text(record_line(self))[:12]


def source_records(hits: list[Hit]) -> list[Source]:
    """The hits as recorded sources."""
    return [
        Source(
            n=n,
            chunk=h.chunk.id,
            digest=sha256_text(h.chunk.text),
            source=h.chunk.source,
            page=h.chunk.page,
            score=round(h.score, 4),
            snippet=" ".join(h.chunk.text.split()[:24]),
        )
        for n, h in enumerate(hits, 1)
    ]


def answers_file(folder: Path) -> Path:
    """The append-only log of answers in folder."""
    return folder / ANSWERS_FILE


def record_answer(folder: Path, record: AnswerRecord) -> Path:
    """Append an answer to the log, durably."""
    path = answers_file(folder)
    append_lines(path, [record_line(record)])
    return path


def read_answers(folder: Path) -> list[AnswerRecord]:
    """Every answer in the log, oldest first; a line torn by a crash is skipped."""
    path = answers_file(folder)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(AnswerRecord.model_validate(json.loads(line)))
        except json.JSONDecodeError:
            if line.rstrip().endswith("}"):
                raise DataError(
                    "not JSON", Location(str(path), number), hint="fix or remove the line"
                ) from None
    return records


def find_answer(folder: Path, answer_id: str) -> AnswerRecord:
    """The answer whose id starts with answer_id; a UsageError when none or several do."""
    found = [r for r in read_answers(folder) if r.id.startswith(answer_id)]
    if len(found) != 1:
        what = "no answer" if not found else f"{len(found)} answers"
        raise UsageError(
            f"{what} with an id starting {answer_id!r}",
            Location(file=str(answers_file(folder))),
            hint="`opensem answers list MANIFEST` shows the ids",
        )
    return found[0]


def as_json(record: AnswerRecord) -> dict[str, Any]:
    """The record as JSON with its id."""
    return {"id": record.id, **record.model_dump(mode="json", exclude_none=True)}
