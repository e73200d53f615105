"""Embedding texts through the cache: only texts the cache lacks reach the encoder.

Missing texts are encoded longest first (as sentence-transformers orders a batch, so batches pad
little) in chunks; each chunk is stored as soon as it is done, so a killed run loses at most one
chunk, and the progress bar advances per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from opensem.core.digests import sha256_text
from opensem.core.stage import ProgressFactory, silent_progress
from opensem.curate.cache import EmbeddingCache
from opensem.errors import StageError

CHUNK_BATCHES = 16  # texts per chunk = CHUNK_BATCHES x the encoder's batch size


class Encoder(Protocol):
    batch_size: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts as rows of a float32 matrix."""


@dataclass(frozen=True)
class EmbedStats:
    texts: int  # texts asked for
    unique: int  # distinct texts among them
    cached: int  # distinct texts found in the cache
    encoded: int  # distinct texts the encoder embedded now


def embed_texts(
    texts: list[str],
    encoder: Encoder,
    cache: EmbeddingCache,
    progress: ProgressFactory = silent_progress,
    description: str = "embedding",
) -> tuple[np.ndarray, EmbedStats]:
    """A (len(texts), dim) float32 matrix of unit vectors, row i for texts[i]."""
    digests = [sha256_text(text) for text in texts]
    first: dict[str, int] = {}
    for index, digest in enumerate(digests):
        first.setdefault(digest, index)
    found = cache.get_many(first)
    missing = sorted((d for d in first if d not in found), key=lambda d: (-len(texts[first[d]]), d))
    if missing:
        chunk = max(1, CHUNK_BATCHES * encoder.batch_size)
        bar = progress(description, len(missing))
        try:
            for start in range(0, len(missing), chunk):
                part = missing[start : start + chunk]
                vectors = encoder.encode([texts[first[d]] for d in part])
                cache.put_many(part, vectors)
                found.update(zip(part, vectors))
                bar.advance(len(part))
        finally:
            bar.close()
    stats = EmbedStats(
        texts=len(texts), unique=len(first), cached=len(first) - len(missing), encoded=len(missing)
    )
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), stats
    dims = {found[d].shape[0] for d in first}
    if len(dims) != 1:
        raise StageError(
            f"embedding dimensions disagree: {sorted(dims)}",
            hint=f"delete {cache.path} and rebuild",
        )
    matrix = np.empty((len(texts), dims.pop()), dtype=np.float32)
    for index, digest in enumerate(digests):
        matrix[index] = found[digest]
    return matrix, stats
