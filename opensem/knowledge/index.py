"""The index on disk, and searching it.

A knowledge folder holds chunks.sqlite (every chunk with its source, page, offsets and heading,
and an FTS5 table over their text: SQLite's BM25 is the keyword index), vectors.faiss (a FAISS
inner-product index of the chunks' unit vectors, row i for chunk row i, searched exactly) and
index.json (the embedder's name, digest and width, and the counts). Both files open with common
tools (sqlite3, faiss), and the same chunks written in the same order give the same bytes.

Hybrid search fuses the dense and keyword rankings by reciprocal rank; every hit reports the
cosine similarity of its chunk to the question, which is what `min_score` compares.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opensem.errors import Location, UsageError
from opensem.knowledge.config import SearchMode
from opensem.knowledge.documents import Chunk

CHUNKS_FILE, VECTORS_FILE, INDEX_FILE = "chunks.sqlite", "vectors.faiss", "index.json"
RRF_K = 60  # reciprocal rank fusion's constant: rank 1 scores 1/61, rank 10 1/70
CANDIDATES = 50  # each ranking's depth before fusion
# A word in more than this share of the chunks (and in more than COMMON_MIN of them) is left out
# of the keyword query, the rarest word always staying: BM25 gives it almost no weight, while its
# long posting list is most of the query's cost. A small knowledge base keeps every word.
COMMON, COMMON_MIN = 0.2, 1000
WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to rank by: left out of the keyword query, whose cost grows with their postings.
STOPWORDS = frozenset(
    "a an and are as at be but by can could do does for from had has have how i if in into is it "
    "its me my no not of on or our should so than that the their them then there these they this "
    "to was we what when where which who why will with would you your".split()
)


@dataclass(frozen=True)
class Hit:
    """A chunk found for a question, with its cosine similarity to it and its rank."""

    chunk: Chunk
    score: float
    rank: int

    def as_json(self) -> dict[str, Any]:
        """The hit as JSON: the chunk's fields, its score and rank."""
        return {**asdict(self.chunk), "score": round(self.score, 4), "rank": self.rank}


def write_index(
    folder: Path, chunks: list[Chunk], vectors: np.ndarray, embedder: dict[str, Any]
) -> dict[str, Any]:
    """Write the knowledge folder; returns what index.json says."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(folder / CHUNKS_FILE) as db:
        db.execute(
            "CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT NOT NULL, source TEXT NOT NULL, "
            "page INTEGER, start INTEGER NOT NULL, end INTEGER NOT NULL, heading TEXT, "
            "text TEXT NOT NULL)"
        )
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (row, c.id, c.source, c.page, c.start, c.end, c.heading, c.text)
                for row, c in enumerate(chunks)
            ),
        )
        db.execute(
            "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, heading, content='chunks', "
            "content_rowid='row', tokenize='porter unicode61')"
        )
        db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
    db.close()
    index = faiss.IndexFlatIP(int(embedder["dimension"]))
    if len(chunks):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(folder / VECTORS_FILE))
    facts = {
        "format": 1,
        "embedder": embedder,
        "chunks": len(chunks),
        "documents": len({c.source for c in chunks}),
    }
    (folder / INDEX_FILE).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    return facts


class KnowledgeIndex:
    """A knowledge folder opened for searching (read-only)."""

    def __init__(self, folder: Path) -> None:
        import faiss

        if not (folder / INDEX_FILE).is_file():
            raise UsageError(
                "this release has no knowledge base",
                Location(file=str(folder)),
                hint="add a `knowledge:` section to the manifest, build and publish it again",
            )
        self.folder = folder
        self.facts: dict[str, Any] = json.loads((folder / INDEX_FILE).read_text())
        self.db = sqlite3.connect(
            f"file:{folder / CHUNKS_FILE}?mode=ro", uri=True, check_same_thread=False
        )
        self.vectors = faiss.read_index(str(folder / VECTORS_FILE))
        # How many chunks hold each (stemmed) word: a temporary table, the file stays read-only.
        self.db.execute(
            "CREATE VIRTUAL TABLE temp.vocabulary USING fts5vocab(main, chunks_fts, row)"
        )

    @property
    def embedder(self) -> dict[str, Any]:
        """The embedder the chunks were embedded with: name, digest and dimension."""
        return dict(self.facts["embedder"])

    def __len__(self) -> int:
        return int(self.facts["chunks"])

    def chunks(self, rows: list[int]) -> dict[int, Chunk]:
        """The chunks at rows."""
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        found = self.db.execute(
            f"SELECT row, id, source, page, start, end, heading, text FROM chunks "
            f"WHERE row IN ({marks})",
            rows,
        ).fetchall()
        return {row: Chunk(*rest) for row, *rest in found}

    def dense(self, vector: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """(row, cosine) of the nearest chunks, best first."""
        if not len(self):
            return []
        scores, rows = self.vectors.search(vector.reshape(1, -1).astype(np.float32), depth)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def keyword(self, question: str, depth: int) -> list[int]:
        """Rows of the chunks BM25 ranks highest for the question's words, best first."""
        words = sorted({w.lower() for w in WORD.findall(question)} - STOPWORDS)
        if not words or not len(self):
            return []
        words = self._informative(words)
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
        found = self.db.execute(
            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) "
            "LIMIT ?",
            (match, depth),
        ).fetchall()
        return [int(row) for (row,) in found]

    def _informative(self, words: list[str]) -> list[str]:
        """The words not too common to be worth their cost (at least the rarest one)."""
        import snowballstemmer

        stem = snowballstemmer.stemmer("porter").stemWord  # what FTS5's porter tokenizer indexes
        stems = {word: stem(word) for word in words}
        marks = ",".join("?" * len(stems))
        counts = dict(
            self.db.execute(
                f"SELECT term, doc FROM temp.vocabulary WHERE term IN ({marks})",
                sorted(set(stems.values())),
            ).fetchall()
        )
        frequency = {word: counts.get(stems[word], 0) for word in words}
        limit = max(COMMON * len(self), COMMON_MIN)
        kept = [word for word in words if frequency[word] <= limit]
        return kept or [min(words, key=lambda word: (frequency[word], word))]

    def search(
        self,
        question: str,
        encode: Callable[[list[str]], np.ndarray] | None,
        top_k: int,
        mode: SearchMode = "hybrid",
        min_score: float | None = None,
    ) -> list[Hit]:
        """The top_k chunks for a question; none when the best is below min_score (it does not
        know). Keyword search needs no encoder; scores are then cosine when one is given, else 0."""
        vector = encode([question])[0] if encode is not None else None
        depth = max(CANDIDATES, top_k)
        dense = self.dense(vector, depth) if vector is not None and mode != "keyword" else []
        keyword = self.keyword(question, depth) if mode != "dense" else []
        fused: dict[int, float] = {}
        for ranking in ([row for row, _ in dense], keyword):
            for rank, row in enumerate(ranking):
                fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
        order = sorted(fused, key=lambda row: (-fused[row], row))[:top_k]
        cosine = dict(dense)
        if vector is not None:
            for row in order:
                if row not in cosine:
                    cosine[row] = float(self.vectors.reconstruct(row) @ vector)
        if min_score is not None and vector is not None and mode != "keyword":
            if not order or max(cosine[row] for row in order) < min_score:
                return []
        found = self.chunks(order)
        return [Hit(found[row], cosine.get(row, 0.0), rank) for rank, row in enumerate(order, 1)]

    def close(self) -> None:
        """Close the database."""
        self.db.close()
