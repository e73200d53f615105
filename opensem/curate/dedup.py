"""The dedup stage's two passes: exact duplicates by normalized digest, then semantic near-duplicates.

Both compare records of the same kind only, and both keep the record with the smallest id of a
group (ties, possible when an upstream stage repeats an id, go to the earlier record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opensem.core.digests import DigestCache
from opensem.core.stage import StageContext
from opensem.curate.cache import EmbeddingCache
from opensem.curate.config import DedupConfig
from opensem.curate.embed import EmbedStats, embed_texts
from opensem.curate.embedder import DEFAULT_MODEL, Embedder, ModelRef, resolve_model
from opensem.curate.search import semantic_dedup
from opensem.curate.text import normalized_digest
from opensem.data.formats import record_kind

SEARCH_SEED = 0  # k-means seed: fixed, so the same records give the same clusters


@dataclass(frozen=True)
class Duplicate:
    reason: str  # "exact" or "semantic"
    of: int  # index of the kept record it duplicates
    similarity: float


@dataclass
class SemanticOutcome:
    removed: dict[int, Duplicate] = field(default_factory=dict)
    nearest: dict[int, tuple[float, int]] = field(
        default_factory=dict
    )  # record -> (similarity, closest earlier kept record)
    stats: EmbedStats = EmbedStats(0, 0, 0, 0)
    model: ModelRef | None = None
    searches: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # per kind: how it was searched


def _priority(records: list[dict[str, Any]], indices: list[int]) -> np.ndarray:
    """Rank of each of indices by (id, position): the record kept of a group is the lowest ranked."""
    order = sorted(range(len(indices)), key=lambda p: (str(records[indices[p]]["id"]), indices[p]))
    rank = np.empty(len(indices), dtype=np.int64)
    rank[order] = np.arange(len(indices))
    return rank


def by_kind(records: list[dict[str, Any]], indices: list[int]) -> dict[str, list[int]]:
    """Indices grouped by record kind: duplicates are only looked for within a kind."""
    groups: dict[str, list[int]] = {}
    for index in indices:
        groups.setdefault(record_kind(records[index]), []).append(index)
    return groups


def exact_duplicates(records: list[dict[str, Any]], texts: list[str]) -> dict[int, Duplicate]:
    """Records whose normalized text equals that of a record of the same kind with a smaller id."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, record in enumerate(records):
        groups.setdefault((record_kind(record), normalized_digest(texts[index])), []).append(index)
    removed: dict[int, Duplicate] = {}
    for members in groups.values():
        if len(members) > 1:
            rank = _priority(records, members)
            keeper = members[int(rank.argmin())]
            removed.update({i: Duplicate("exact", keeper, 1.0) for i in members if i != keeper})
    return removed


def open_embedder(
    model: str, local_dir: Path | None, batch_size: int, ctx: StageContext
) -> tuple[Embedder, EmbeddingCache]:
    """The model (resolved, digested) and its embedding cache under ctx.cache_dir/embeddings."""
    root = ctx.cache_dir / "embeddings"
    digests = DigestCache(root / "model-digests.json")
    ref = resolve_model(model, local_dir, digests)
    digests.save()
    return Embedder(ref, batch_size=batch_size), EmbeddingCache(root, ref.digest)


def semantic_duplicates(
    records: list[dict[str, Any]],
    texts: list[str],
    indices: list[int],
    params: DedupConfig,
    batch_size: int,
    local_dir: Path | None,
    ctx: StageContext,
) -> SemanticOutcome:
    """Near-duplicates among records[indices], searched per kind; every other record is kept."""
    groups = by_kind(records, indices)
    outcome = SemanticOutcome()
    if not any(len(members) > 1 for members in groups.values()):
        return outcome  # nothing to compare: the model is not even loaded
    embedder, cache = open_embedder(params.model or DEFAULT_MODEL, local_dir, batch_size, ctx)
    outcome.model = embedder.ref
    with cache:
        vectors, outcome.stats = embed_texts(
            [texts[i] for i in indices], embedder, cache, ctx.progress, "embedding records"
        )
    row_of = {index: row for row, index in enumerate(indices)}
    for kind, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        bar = ctx.progress(f"searching {kind} records", len(members))
        try:
            rows = vectors[[row_of[i] for i in members]]
            result = semantic_dedup(
                rows,
                _priority(records, members),
                params.threshold,
                seed=SEARCH_SEED,
                on_block=bar.advance,
            )
        finally:
            bar.close()
        for position, member in enumerate(members):
            match = int(result.match[position])
            if match >= 0:
                outcome.nearest[member] = (float(result.similarity[position]), members[match])
            if result.removed[position]:
                outcome.removed[member] = Duplicate(
                    "semantic", members[match], float(result.similarity[position])
                )
        outcome.searches[kind] = {
            "records": len(members),
            "method": result.method,
            "clusters": result.clusters,
        }
        ctx.log.debug(
            "dedup %s: %s search, %d clusters, %d products",
            kind,
            result.method,
            result.clusters,
            result.products,
        )
    return outcome
