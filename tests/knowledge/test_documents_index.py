"""Chunks keep where they came from, the index finds them three ways, and a scan is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opensem.errors import DataError, UsageError
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


def _index_of(tmp_path: Path, texts: list[str]) -> KnowledgeIndex:
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
    return KnowledgeIndex(tmp_path / "kb")


def test_keyword_ranking_is_bm25_over_stems_without_stop_words(tmp_path: Path) -> None:
    texts = [f"Shot number {n}: the espresso ran fast." for n in range(30)] + [
        "Descale the boiler monthly; descaling boilers keeps them quiet."
    ]
    index = _index_of(tmp_path, texts)
    assert index.keyword("descaled boiler", 5) == [30]  # stems meet: descaled, descale, descaling
    assert index.keyword("espresso boiler", 3)[0] == 30  # the rare word outweighs the common one
    assert len(index.keyword("espresso", 50)) == 30
    assert index.keyword("the of and", 5) == []  # stop words only
    assert index.keyword("zzzz qqqq", 5) == []  # words no chunk holds


def test_bm25_weights_are_lucenes_formula(tmp_path: Path) -> None:
    texts = ["grinder burr grinder", "burr", "tamp the puck evenly"]
    index = _index_of(tmp_path, texts)
    (rows,), (scores,) = index.keywords.retrieve(
        [["grinder"]], k=3, n_threads=1, show_progress=False
    )
    lengths = [3, 1, 3]  # words after stop words: "the" is not counted
    average = sum(lengths) / 3
    idf = np.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    expected = idf * 2 / (2 + 1.2 * (0.25 + 0.75 * lengths[0] / average))
    assert rows[0] == 0 and scores[0] == pytest.approx(expected, rel=1e-5)


def test_an_index_in_an_older_format_is_refused_with_a_hint(tmp_path: Path) -> None:
    import json

    _index_of(tmp_path, ["Descale the boiler."])
    facts = json.loads((tmp_path / "kb" / "index.json").read_text())
    (tmp_path / "kb" / "index.json").write_text(json.dumps({**facts, "format": 1}))
    with pytest.raises(UsageError, match="older opensem") as caught:
        KnowledgeIndex(tmp_path / "kb")
    assert "build the expert again" in (caught.value.hint or "")


def _write(folder: Path, n: int, text: str) -> Path:
    path = folder / f"d{n}.md"
    path.write_text(text)
    return path
