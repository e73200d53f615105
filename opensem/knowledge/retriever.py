"""Searching a release's knowledge base: the query encoder (the very embedder its chunks were
embedded with) and the search settings the release was built with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opensem.core.digests import DigestCache
from opensem.curate.embedder import Embedder
from opensem.errors import Location, UsageError
from opensem.knowledge.config import SearchSettings
from opensem.knowledge.index import Hit, KnowledgeIndex


def query_encoder(
    index: KnowledgeIndex, cache_dir: Path | None, asked: str | None = None
) -> Embedder:
    """An encoder for questions; a UsageError when asked names another embedder than the index's,
    or when this machine's copy of it differs (vectors of two models do not compare)."""
    from opensem.curate.embedder import resolve_model

    built = index.embedder
    if asked is not None and asked != built["name"]:
        raise UsageError(
            f"the knowledge base was embedded with {built['name']}, not {asked}",
            Location(file=str(index.folder)),
            hint=f"ask with --embedder {built['name']} (or leave it out), or rebuild the index "
            f"with knowledge.model: {asked}",
        )
    digests = DigestCache(cache_dir / "model-digests.json" if cache_dir else None)
    ref = resolve_model(built["name"], None, digests)
    digests.save()
    if ref.digest != built["digest"]:
        raise UsageError(
            f"this machine's {built['name']} is not the copy the knowledge base was built with "
            f"(digest {ref.digest[:12]}, index {str(built['digest'])[:12]})",
            Location(file=str(index.folder)),
            hint="install the same embedder version, or rebuild the knowledge base here",
        )
    return Embedder(ref, batch_size=16)


@dataclass
class Retriever:
    """A release's knowledge base, ready for questions."""

    index: KnowledgeIndex
    embedder: Embedder
    settings: SearchSettings

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of texts, by the index's embedder."""
        return self.embedder.encode(texts)

    def find(self, question: str) -> list[Hit]:
        """The sources for a question with the release's settings; none below min_score."""
        s = self.settings
        return self.index.search(question, self.embedder.encode, s.top_k, s.mode, s.min_score)


def release_retriever(folder: Path, manifest: dict[str, Any]) -> Retriever:
    """The retriever of a release's knowledge folder, searching as its manifest says."""
    index = KnowledgeIndex(folder)
    search = ((manifest.get("knowledge") or {}).get("search")) or {}
    return Retriever(index, query_encoder(index, None), SearchSettings.model_validate(search))
