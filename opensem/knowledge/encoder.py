"""The query encoder of an index: the very embedder its chunks were embedded with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from opensem.core.digests import DigestCache
from opensem.errors import Location, UsageError
from opensem.knowledge.index import KnowledgeIndex


def query_encoder(
    index: KnowledgeIndex, cache_dir: Path, asked: str | None = None
) -> Callable[[list[str]], np.ndarray]:
    """An encoder for questions; a UsageError when asked names another embedder than the index's,
    or when this machine's copy of it differs (vectors of two models do not compare)."""
    from opensem.curate.embedder import Embedder, resolve_model

    built = index.embedder
    if asked is not None and asked != built["name"]:
        raise UsageError(
            f"the knowledge base was embedded with {built['name']}, not {asked}",
            Location(file=str(index.folder)),
            hint=f"ask with --embedder {built['name']} (or leave it out), or rebuild the index "
            f"with knowledge.model: {asked}",
        )
    digests = DigestCache(cache_dir / "model-digests.json")
    ref = resolve_model(built["name"], None, digests)
    digests.save()
    if ref.digest != built["digest"]:
        raise UsageError(
            f"this machine's {built['name']} is not the copy the knowledge base was built with "
            f"(digest {ref.digest[:12]}, index {str(built['digest'])[:12]})",
            Location(file=str(index.folder)),
            hint="install the same embedder version, or rebuild the knowledge base here",
        )
    return Embedder(ref, batch_size=16).encode
