"""The index on disk, and searching it.

A knowledge folder holds chunks.sqlite (every chunk with its source, page, offsets and heading),
vectors.faiss (a FAISS inner-product index of the chunks' unit vectors, row i for chunk row i;
a float16 copy in memory finds candidates and these score them exactly), keywords/ (a bm25s
index: every word's BM25 weight in every chunk, computed when the index is built, so a question
costs a sum over its words' postings rather than scoring every chunk that holds a common word)
and index.json (the embedder's name, digest and width, and
the counts). Each opens with its own common tool (sqlite3, faiss, bm25s), and the same chunks
written in the same order give the same bytes.

Hybrid search fuses the dense and keyword rankings by reciprocal rank; every hit reports the
cosine similarity of its chunk to the question, which is what `min_score` compares.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opensem.errors import Location, UsageError
from opensem.knowledge.config import SearchMode
from opensem.knowledge.documents import Chunk

CHUNKS_FILE, VECTORS_FILE, KEYWORDS_DIR, INDEX_FILE = (
    "chunks.sqlite",
    "vectors.faiss",
    "keywords",
    "index.json",
)
FORMAT = 2  # 1 kept the keyword index in SQLite's FTS5
RRF_K = 60  # reciprocal rank fusion's constant: rank 1 scores 1/61, rank 10 1/70
CANDIDATES = 50  # each ranking's depth before fusion
BM25_K1, BM25_B = 1.2, 0.75  # the usual BM25 constants (Lucene's and SQLite FTS5's)
# Words too common to rank by: left out of both the keyword index and the questions.
STOPWORDS = sorted(
    "a an and are as at be but by can could do does for from had has have how i if in into is it "
    "its me my no not of on or our should so than that the their them then there these they this "
    "to was we what when where which who why will with would you your".split()
)


def _words(texts: list[str]) -> Any:
    """bm25s tokens of texts: lower-cased words, stop words out, Porter stems."""
    import bm25s
    import snowballstemmer

    return bm25s.tokenize(
        texts,
        lower=True,
        stopwords=STOPWORDS,
        stemmer=snowballstemmer.stemmer("porter"),
        return_ids=False,
        show_progress=False,
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
    import bm25s
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
    db.close()
    if chunks:
        keywords = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        keywords.index(
            _words([f"{c.heading or ''}\n{c.text}" for c in chunks]), show_progress=False
        )
        keywords.save(str(folder / KEYWORDS_DIR))
    index = faiss.IndexFlatIP(int(embedder["dimension"]))
    if len(chunks):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(folder / VECTORS_FILE))
    facts = {
        "format": FORMAT,
        "embedder": embedder,
        "chunks": len(chunks),
        "documents": len({c.source for c in chunks}),
    }
    (folder / INDEX_FILE).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    return facts


class KnowledgeIndex:
    """A knowledge folder opened for searching (read-only)."""

    def __init__(self, folder: Path) -> None:
        import bm25s
        import faiss

        if not (folder / INDEX_FILE).is_file():
            raise UsageError(
                "this release has no knowledge base",
                Location(file=str(folder)),
                hint="add a `knowledge:` section to the manifest, build and publish it again",
            )
        self.folder = folder
        self.facts: dict[str, Any] = json.loads((folder / INDEX_FILE).read_text())
        if self.facts.get("format") != FORMAT:
            raise UsageError(
                f"this knowledge base was written by an older opensem (format "
                f"{self.facts.get('format')}, this one reads {FORMAT})",
                Location(file=str(folder / INDEX_FILE)),
                hint="build the expert again: the index stage writes the current format",
            )
        self.db = sqlite3.connect(
            f"file:{folder / CHUNKS_FILE}?mode=ro", uri=True, check_same_thread=False
        )
        self.vectors = faiss.read_index(str(folder / VECTORS_FILE))
        # One question at a time: a flat scan is memory-bound, and a second OpenMP team only
        # spins against the encoder's threads (measured: 2.8 ms alone, 13 ms beside torch at 20k).
        faiss.omp_set_num_threads(1)
        self._scan: Any = None
        self.keywords = (
            bm25s.BM25.load(str(folder / KEYWORDS_DIR))
            if (folder / KEYWORDS_DIR).is_dir()
            else None
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
        """(row, cosine) of the nearest chunks, best first: a float16 scan (half the memory to
        read) picks twice the depth, and the float32 vectors score those exactly."""
        if not len(self):
            return []
        query = vector.reshape(1, -1).astype(np.float32)
        _, found = self._coarse().search(query, min(2 * depth, len(self)))
        rows = found[0][found[0] >= 0]
        exact = self.vectors.reconstruct_batch(rows) @ query[0]
        order = np.lexsort((rows, -exact))[:depth]
        return [(int(rows[i]), float(exact[i])) for i in order]

    def _coarse(self) -> Any:
        """The float16 copy of the vectors, made on first use."""
        if self._scan is None:
            import faiss

            scan = faiss.IndexScalarQuantizer(
                self.vectors.d, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
            scan.add(self.vectors.reconstruct_n(0, self.vectors.ntotal))
            self._scan = scan
        return self._scan

    def keyword(self, question: str, depth: int) -> list[int]:
        """Rows of the chunks BM25 ranks highest for the question's words, best first."""
        words = _words([question])[0]
        if not words or self.keywords is None:
            return []
        rows, scores = self.keywords.retrieve(
            [words], k=min(depth, len(self)), n_threads=1, show_progress=False
        )
        return [int(row) for row, score in zip(rows[0], scores[0], strict=True) if score > 0]

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
