"""Documents into chunks for retrieval: each chunk keeps where it came from.

A PDF is chunked page by page, so every chunk cites one page; a text or Markdown file is one
page (page None). A chunk records its character offsets in the page's normalized text and, in
Markdown, the heading above it. Its id is the digest of its source, page and text, so an edit to
one document changes only that document's chunks, and the embedding cache (keyed by text) embeds
only the chunks that changed.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opensem.core.digests import sha256_text
from opensem.data.chunking import ChunkingConfig, chunk_text, normalize_text
from opensem.data.corpus import DOCUMENT_SUFFIXES, PDF_SUFFIXES, pdf_pages, read_text_file
from opensem.errors import DataError, Location

HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Chunk:
    """A passage of a document and where it is."""

    id: str
    source: str  # the document's project path
    page: int | None  # 1-based, PDFs only
    start: int  # character offsets in the page's normalized text
    end: int
    heading: str | None  # the Markdown heading above it
    text: str

    def as_json(self) -> dict[str, Any]:
        """The chunk as JSON."""
        return asdict(self)


def document_files(paths: list[Path]) -> list[Path]:
    """The documents under paths (files or folders), sorted, so the index does not depend on the
    order a folder lists them."""
    found: set[Path] = set()
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found.update(p for p in candidates if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
    return sorted(found)


def document_chunks(file: Path, source: str, chunking: ChunkingConfig) -> list[Chunk]:
    """The chunks of one document. A PDF without a text layer is an error that names it."""
    if file.suffix.lower() in PDF_SUFFIXES:
        pages: list[tuple[int | None, str]] = list(enumerate(pdf_pages(file, source), start=1))
        if pages and not any(text.strip() for _, text in pages):
            raise DataError(
                f"the PDF has no text layer ({len(pages)} pages, no text): a scan?",
                Location(file=source),
                hint="run OCR on it first (for example `ocrmypdf in.pdf out.pdf`), or remove it "
                "from knowledge.sources; nothing built so far is lost",
            )
    else:
        pages = [(None, normalize_text(read_text_file(file, source)))]
    chunks: list[Chunk] = []
    for page, text in pages:
        headings = [(m.start(), m.group(1)) for m in HEADING.finditer(text)]
        cursor = 0
        for piece in chunk_text(text, chunking.size, chunking.overlap):
            start = _offset(text, piece, cursor)
            cursor = max(cursor, start + 1)
            heading = next((h for at, h in reversed(headings) if at <= start), None)
            digest = sha256_text(f"{source}\n{page}\n{piece}")
            chunks.append(
                Chunk(digest[:16], source, page, start, start + len(piece), heading, piece)
            )
    return chunks


def _offset(text: str, piece: str, cursor: int) -> int:
    """Where piece starts in text, from cursor on (chunks keep the document's order); chunking may
    rejoin a paragraph's lines, so its first words are the fallback."""
    for probe in (piece, piece[:40]):
        found = text.find(probe, max(0, cursor - len(piece)))
        if found >= 0:
            return found
    return cursor
