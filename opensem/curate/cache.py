"""The embedding cache: one SQLite file per model digest, a row per text digest.

SQLite commits are atomic, so a killed run keeps every batch it finished and never leaves a torn
row; a rebuild after adding records embeds only the new texts. A file that SQLite cannot read,
or a row of the wrong size, is dropped and recomputed, never trusted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

_QUERY_CHUNK = 500  # SQLite's default limit of bound parameters is 999 on old builds


class EmbeddingCache:
    """Vectors keyed by text digest for one model (by its digest); float32, stored little-endian."""

    def __init__(self, root: Path, model_digest: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / f"{model_digest}.sqlite"
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        for attempt in range(2):
            conn = sqlite3.connect(self.path, timeout=60.0)
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS vectors (digest TEXT PRIMARY KEY, dim INTEGER NOT NULL, vector BLOB "
                    "NOT NULL)"
                )
                conn.execute("SELECT count(*) FROM vectors").fetchone()
                return conn
            except sqlite3.DatabaseError:
                conn.close()
                if attempt:
                    raise
                self._drop_files()
        raise AssertionError("unreachable")

    def _drop_files(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def get_many(self, digests: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors among digests; rows of a bad size are deleted and left out."""
        wanted = list(dict.fromkeys(digests))
        found: dict[str, np.ndarray] = {}
        bad: list[str] = []
        for start in range(0, len(wanted), _QUERY_CHUNK):
            chunk = wanted[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            for digest, dim, blob in self._conn.execute(
                f"SELECT digest, dim, vector FROM vectors WHERE digest IN ({marks})", chunk
            ):
                if dim <= 0 or len(blob) != 4 * dim:
                    bad.append(digest)
                    continue
                found[digest] = np.frombuffer(blob, dtype="<f4")
        if bad:
            with self._conn:
                self._conn.executemany("DELETE FROM vectors WHERE digest = ?", [(d,) for d in bad])
        return found

    def put_many(self, digests: list[str], vectors: np.ndarray) -> None:
        """Store one batch in one transaction: all of it lands, or none of it."""
        rows = [
            (d, int(v.shape[0]), np.asarray(v, dtype="<f4").tobytes())
            for d, v in zip(digests, vectors)
        ]
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO vectors (digest, dim, vector) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
