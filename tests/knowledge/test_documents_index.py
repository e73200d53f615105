"""Chunks keep where they came from, the index finds them three ways, and a scan is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opensem.errors import DataError
from opensem.knowledge.config import KnowledgeConfig
from opensem.knowledge.documents import document_chunks, document_files
from opensem.knowledge.index import KnowledgeIndex, write_index
from tests.pdf import write_pdf

GUIDE = """# Grinding

Grind finer when espresso runs fast and tastes sour.

# Milk

Steam milk to sixty degrees; hotter milk tastes flat and burnt.
"""


def test_a_chunk_knows_its_file_page_offsets_and_heading(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text(GUIDE)
    write_pdf(
        tmp_path / "manual.pdf", [["Descale the boiler monthly."], ["Backflush the group weekly."]]
    )
    chunking = KnowledgeConfig(chunking={"size": 100, "overlap": 0}).chunking
    files = document_files([tmp_path])
    assert [f.name for f in files] == ["guide.md", "manual.pdf"]
    guide = document_chunks(files[0], "docs/guide.md", chunking)
    text = "\n".join(line.rstrip() for line in GUIDE.strip().split("\n"))
    assert [c.heading for c in guide] == ["Grinding", "Milk"]
    assert all(text[c.start : c.end] == c.text for c in guide)
    manual = document_chunks(files[1], "docs/manual.pdf", chunking)
    assert [(c.page, c.text) for c in manual] == [
        (1, "Descale the boiler monthly."),
        (2, "Backflush the group weekly."),
    ]
    assert len({c.id for c in guide + manual}) == 4


def test_a_pdf_without_a_text_layer_is_named_with_a_hint(tmp_path: Path) -> None:
    write_pdf(tmp_path / "scan.pdf", [[], []])
    with pytest.raises(DataError) as caught:
        document_chunks(tmp_path / "scan.pdf", "docs/scan.pdf", KnowledgeConfig().chunking)
    assert caught.value.location.file == "docs/scan.pdf" and "OCR" in caught.value.hint


def _vectors(texts: list[str]) -> np.ndarray:
    """Bag-of-letters unit vectors: enough for the index's mechanics, no model needed."""
    rows = np.zeros((len(texts), 26), dtype=np.float32)
    for i, text in enumerate(texts):
        for ch in text.lower():
            if "a" <= ch <= "z":
                rows[i, ord(ch) - 97] += 1
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_dense_keyword_and_hybrid_search_and_the_minimum_score(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text(GUIDE)
    chunks = document_chunks(
        tmp_path / "guide.md",
        "guide.md",
        KnowledgeConfig(chunking={"size": 100, "overlap": 0}).chunking,
    )
    write_index(
        tmp_path / "kb",
        chunks,
        _vectors([c.text for c in chunks]),
        {"name": "letters", "digest": "x", "dimension": 26},
    )
    first = (tmp_path / "kb" / "chunks.sqlite").read_bytes()
    write_index(
        tmp_path / "kb2",
        chunks,
        _vectors([c.text for c in chunks]),
        {"name": "letters", "digest": "x", "dimension": 26},
    )
    assert (tmp_path / "kb2" / "chunks.sqlite").read_bytes() == first  # same chunks, same bytes
    index = KnowledgeIndex(tmp_path / "kb")
    assert [h.chunk.heading for h in index.search("steaming milk", None, 1, "keyword")] == ["Milk"]
    assert index.search("espresso grind", _vectors, 2, "dense")[0].chunk.heading == "Grinding"
    hybrid = index.search("why is my espresso sour", _vectors, 2, "hybrid")
    assert hybrid[0].chunk.heading == "Grinding" and [h.rank for h in hybrid] == [1, 2]
    assert 0 < hybrid[0].score <= 1
    assert index.search("zzzz qqqq", _vectors, 2, "hybrid", min_score=0.99) == []


def test_words_in_most_chunks_leave_a_large_keyword_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opensem.knowledge.index as index_module

    texts = [f"Shot number {n}: the espresso ran fast." for n in range(30)] + [
        "Descale the boiler monthly."
    ]
    chunks = [
        document_chunks(_write(tmp_path, n, t), f"d{n}.md", KnowledgeConfig().chunking)[0]
        for n, t in enumerate(texts)
    ]
    write_index(
        tmp_path / "kb",
        chunks,
        _vectors(texts),
        {"name": "letters", "digest": "x", "dimension": 26},
    )
    index = KnowledgeIndex(tmp_path / "kb")
    assert index._informative(["espresso", "boiler"]) == [
        "espresso",
        "boiler",
    ]  # a small base keeps all
    monkeypatch.setattr(index_module, "COMMON_MIN", 5)
    assert index._informative(["espresso", "boiler"]) == ["boiler"]  # in 30 of 31 chunks: left out
    assert index._informative(["espresso", "ran"]) == ["espresso"]  # all common: the rarest stays
    assert index.keyword("espresso boiler", 5)[0] == 30


def _write(folder: Path, n: int, text: str) -> Path:
    path = folder / f"d{n}.md"
    path.write_text(text)
    return path
