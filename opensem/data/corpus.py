"""Reading a corpus: source files -> normalized records as JSONL lines, on every core for a large one.

Files are read in batches of consecutive files. Each batch is parsed (in a worker process when
the corpus is large) into a part file of its own, and only the records' ids and kinds travel back:
the ingest stage drops repeated ids and joins the parts in order, so the output is the same bytes
however many workers read it, and memory holds a few batches' ids, never the corpus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensem.core.digests import sha256_text
from opensem.data.chunking import ChunkingConfig, chunk_text, normalize_text
from opensem.data.formats import detect_format, normalize, record_kind
from opensem.data.pages import drop_running_lines
from opensem.data.records import render_records
from opensem.errors import DataError, Location

TEXT_SUFFIXES = (".txt", ".md")
PDF_SUFFIXES = (".pdf",)
DOCUMENT_SUFFIXES = TEXT_SUFFIXES + PDF_SUFFIXES
DATASET_SUFFIXES = (".jsonl", ".json")
BATCH_BYTES, BATCH_FILES = 8 << 20, 256  # a batch ends at whichever comes first


@dataclass(frozen=True)
class SourceFile:
    path: Path
    source: str  # its name in records and error messages
    format: str  # of a dataset file (auto: from its first record)


@dataclass
class BatchRead:
    """What one batch held: per file, the (id, kind) of each record, in the order of the part file's lines."""

    part: Path
    records: list[list[tuple[str, str]]]


def read_text_file(file: Path, source: str) -> str:
    """The file as text; a UTF-8 byte order mark is dropped so it cannot change the output."""
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        where = Location(file=source)
        raise DataError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            where,
            hint="re-save the file as UTF-8",
        ) from exc


def pdf_pages(file: Path, source: str) -> list[str]:
    """The text layer of a PDF, page by page, without running headers and footers (noise inside
    chunks), each page normalized."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(file)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DataError(
                "the PDF is encrypted", Location(file=source), hint="save an unencrypted copy of it"
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except DataError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DataError(
            f"cannot read PDF: {exc}",
            Location(file=source),
            hint="check that the file is a valid PDF",
        ) from exc
    pages, _ = drop_running_lines(pages)
    return [normalize_text(page) for page in pages]


def _chunks(file: Path, source: str, chunking: ChunkingConfig) -> list[str]:
    text = (
        "\n\n".join(pdf_pages(file, source))
        if file.suffix.lower() in PDF_SUFFIXES
        else read_text_file(file, source)
    )
    return chunk_text(normalize_text(text), chunking.size, chunking.overlap)


def document_lines(source: str, chunks: list[str]) -> list[tuple[str, str, bytes]]:
    """(id, kind, jsonl line) of each chunk's document record: the bytes make_record and write_records
    give, with each chunk encoded once for both its id and its line (most of ingest's time on a corpus)."""
    name = json.dumps(source, ensure_ascii=False)
    found = []
    for chunk in chunks:
        text = json.dumps(chunk, ensure_ascii=False)
        record_id = sha256_text(f'{{"text":{text}}}')[:16]  # canonical_json({"text": chunk})
        found.append(
            (
                record_id,
                "document",
                f'{{"id": "{record_id}", "source": {name}, "text": {text}}}\n'.encode(),
            )
        )
    return found


def _raw_records(file: Path, source: str) -> Iterator[tuple[Any, Location]]:
    """Raw JSON records of a .jsonl (one per non-blank line) or .json (a list, or one object) file."""
    text = read_text_file(file, source)
    if file.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = Location(file=source, line=number)
            try:
                yield json.loads(line), where
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"invalid JSON: {exc.msg}",
                    where,
                    hint="each line of a .jsonl file must be one JSON object",
                ) from exc
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", Location(file=source, line=exc.lineno)) from exc
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        yield item, Location(file=source, key=f"[{index}]")


def _dataset(file: Path, source: str, fmt: str) -> list[dict[str, Any]]:
    """Normalize every record of a dataset file; with fmt auto the first record names the format."""
    records: list[dict[str, Any]] = []
    for raw, where in _raw_records(file, source):
        if fmt == "auto":
            fmt = detect_format(raw, where)
        records.append(normalize(raw, fmt, source, line=where.line, key=where.key))
    return records


def _rendered(records: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """(id, kind, jsonl line) of each record, the line exactly as write_records writes it."""
    return [
        (record["id"], record_kind(record), render_records([record]).encode()) for record in records
    ]


def record_lines(records: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """(id, kind, jsonl line) of each record, the line exactly as write_records writes it."""
    return [
        (record["id"], record_kind(record), render_records([record]).encode()) for record in records
    ]


def file_lines(chunking: ChunkingConfig, file: SourceFile) -> list[tuple[str, str, bytes]]:
    """The records of one source file as (id, kind, JSON line) rows."""
    if file.path.suffix.lower() in DOCUMENT_SUFFIXES:
        return document_lines(file.source, _chunks(file.path, file.source, chunking))
    return record_lines(_dataset(file.path, file.source, file.format))


def batches(files: list[SourceFile]) -> list[list[SourceFile]]:
    """Consecutive files in batches of about BATCH_BYTES (at most BATCH_FILES files)."""
    found: list[list[SourceFile]] = [[]]
    size = 0
    for file in files:
        if found[-1] and (size >= BATCH_BYTES or len(found[-1]) >= BATCH_FILES):
            found.append([])
            size = 0
        found[-1].append(file)
        size += file.path.stat().st_size
    return [batch for batch in found if batch]


def read_batch(chunking: ChunkingConfig, task: tuple[Path, list[SourceFile]]) -> BatchRead:
    """Parse a batch into its part file; runs in a worker process for a large corpus."""
    part, files = task
    read = BatchRead(part, [])
    with part.open("wb") as out:
        for file in files:
            found = file_lines(chunking, file)
            out.write(b"".join(line for _, _, line in found))
            read.records.append([(record_id, kind) for record_id, kind, _ in found])
    return read


def user_turns(file: Path) -> list[str]:
    """The first user turn (or prompt) of every record in a dataset file, whatever its format."""
    turns = []
    for record in _dataset(file, str(file), "auto"):
        messages = record.get("messages") or []
        first = next(
            (m["content"] for m in messages if m.get("role") == "user"), record.get("prompt")
        )
        if isinstance(first, str) and first.strip():
            turns.append(first)
    return turns
