"""Cutting documents into chunks: paragraphs packed greedily up to a size, with optional overlap.

A chunk's id is the digest of its text, so chunks an edit does not reach keep their ids, and the
teacher is asked again only about the chunks that changed. Packing is greedy from the start of a
document: an edit that changes where one chunk ends can shift the chunks after it in the same
document, never those of another document.
"""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from opensem.settings.fields import Section, invalid

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class ChunkingConfig(Section):
    size: int = Field(
        2000,
        ge=100,
        le=1_000_000,
        description="Most characters per document chunk; cut on paragraphs, then sentences, then words.",
    )
    overlap: int = Field(
        0,
        ge=0,
        description=(
            "Characters of a chunk's end repeated at the start of the next (whole sentences or "
            "words); below size / 2."
        ),
    )

    @model_validator(mode="after")
    def _overlap_below_half(self) -> ChunkingConfig:
        if self.overlap * 2 >= self.size:
            raise invalid(f"overlap ({self.overlap}) must be less than half of size ({self.size})")
        return self


def normalize_text(text: str) -> str:
    """Strip trailing spaces per line, collapse runs of blank lines to one, strip the ends."""
    joined = "\n".join(
        line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    )
    if "\n\n\n" in joined:  # the regex scans every character; most texts have no run to collapse
        joined = re.sub(r"\n{3,}", "\n\n", joined)
    return joined.strip()


def chunk_text(text: str, limit: int, overlap: int = 0) -> list[str]:
    """Chunks of at most limit characters. With overlap, each chunk after the first starts with
    up to overlap characters from the end of the one before (whole sentences, else whole words)."""
    if overlap <= 0:
        return _pack(text, limit)
    if overlap * 2 >= limit:
        raise ValueError(f"overlap ({overlap}) must be less than half of the chunk size ({limit})")
    base = _pack(text, limit - overlap - 2)
    chunks = base[:1]
    for previous, current in zip(base, base[1:]):
        tail = _tail(previous, overlap)
        chunks.append(f"{tail}\n\n{current}" if tail else current)
    return chunks


def _pack(text: str, limit: int) -> list[str]:
    """Pack paragraphs greedily into chunks of at most limit characters; oversized ones are cut at
    sentences, then words."""
    if len(text) <= limit:
        return [text] if text else []
    pieces = [piece for paragraph in text.split("\n\n") for piece in _split_long(paragraph, limit)]
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _tail(chunk: str, overlap: int) -> str:
    """The last whole sentences of a chunk within overlap characters; else its last whole words."""
    sentences = _SENTENCE_END.split(chunk.split("\n\n")[-1])
    picked: list[str] = []
    for sentence in reversed(sentences):
        if len(" ".join([sentence, *picked])) > overlap:
            break
        picked.insert(0, sentence)
    if picked:
        return " ".join(picked)
    words: list[str] = []
    for word in reversed(chunk.split()):
        if len(" ".join([word, *words])) > overlap:
            break
        words.insert(0, word)
    return " ".join(words)


def _split_long(paragraph: str, limit: int) -> list[str]:
    if len(paragraph) <= limit:
        return [paragraph]
    parts: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        units = [sentence] if len(sentence) <= limit else _split_words(sentence, limit)
        for unit in units:
            if parts and len(parts[-1]) + 1 + len(unit) <= limit:
                parts[-1] = f"{parts[-1]} {unit}"
            else:
                parts.append(unit)
    return parts


def _split_words(sentence: str, limit: int) -> list[str]:
    """Cut a run-on sentence at spaces; a single word longer than limit is cut hard."""
    out: list[str] = []
    for word in sentence.split():
        while len(word) > limit:
            out.append(word[:limit])
            word = word[limit:]
        if out and len(out[-1]) + 1 + len(word) <= limit:
            out[-1] = f"{out[-1]} {word}"
        else:
            out.append(word)
    return out
