"""Searching a release's knowledge base: the query encoder (the very embedder its chunks were
embedded with, run by ONNX Runtime where that gives the same vectors) and the search settings
the release was built with."""

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
from opensem.knowledge.onnx_query import OnnxQueries, onnx_queries, user_cache


@dataclass
class QueryEncoder:
    """Encodes questions with the index's embedder: by ONNX Runtime when it matched torch."""

    embedder: Embedder
    fast: OnnxQueries | None = None

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of texts."""
        return self.fast.encode(texts) if self.fast is not None else self.embedder.encode(texts)


def query_encoder(
    index: KnowledgeIndex, cache_dir: Path | None, asked: str | None = None
) -> QueryEncoder:
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
    embedder = Embedder(ref, batch_size=16)
    return QueryEncoder(embedder, onnx_queries(embedder, cache_dir or user_cache()))


@dataclass
class Retriever:
    """A release's knowledge base, ready for questions."""

    index: KnowledgeIndex
    encoder: QueryEncoder
    settings: SearchSettings

    @property
    def embedder(self) -> Embedder:
        """The index's embedder (torch), for batches and token counts."""
        return self.encoder.embedder

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of texts, by the index's embedder."""
        return self.encoder.encode(texts)

    def find(self, question: str) -> list[Hit]:
        """The sources for a question with the release's settings; none below min_score."""
        s = self.settings
        return self.index.search(question, self.encoder.encode, s.top_k, s.mode, s.min_score)


def release_retriever(folder: Path, manifest: dict[str, Any]) -> Retriever:
    """The retriever of a release's knowledge folder, searching as its manifest says."""
    index = KnowledgeIndex(folder)
    search = ((manifest.get("knowledge") or {}).get("search")) or {}
    return Retriever(index, query_encoder(index, None), SearchSettings.model_validate(search))
