"""Semantic deduplication of unit vectors: drop each vector too similar to one already kept.

Vectors are visited in rank order (the dedup stage ranks records by id). A vector is removed when
its cosine similarity to a kept vector ranked before it exceeds the threshold; so in a chain
a ~ b ~ c where a and c are not alike, b goes and a and c stay. Only kept vectors are compared
against, so memory stays linear even when thousands of records are near-copies of each other.

Which kept vectors a vector is compared with:
- exact: all of them, in blocks (bounded memory). Used up to EXACT_MAX vectors.
- clustered (SemDeDup): those of its own spherical k-means cluster, plus those of every cluster
  whose border it lies near. A pair x in A, y in B with |x - y| < r (r = sqrt(2 - 2 t) for
  threshold t, as |x - y|^2 = 2 - 2 x.y) straddles the hyperplane bisecting centroids cA and cB,
  so x lies within (x - y).u of it, u the unit normal: at most r, and about r / sqrt(dim) when the
  difference of two near-duplicates points in no particular direction. x also searches B when it
  lies within BOUNDARY_SIGMAS such deviations of that hyperplane (x.cA - x.cB <= slack r |cA - cB|).
  The full radius r would make this exact but, in 384 dimensions, cost as much as all pairs;
  bench/dedup_search.py measures how often the two disagree.

Besides the decision, each vector gets the similarity of the closest kept vector it was compared
with (the statistic the threshold is applied to), for the report's histogram and near misses.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from opensem.curate.kmeans import assign, default_clusters, spherical_kmeans

EXACT_MAX = 20_000  # up to this many vectors all kept ones are compared; above it, clusters
CLUSTER_SIZE = 1_000  # the size k-means aims at: k-means cost grows with k, comparisons with n / k
BLOCK = 4096  # vectors decided together; a similarity tile is at most BLOCK x BLOCK (64 MiB)
BOUNDARY_SIGMAS = 5.0


@dataclass
class DedupResult:
    removed: np.ndarray  # (N,) bool
    match: np.ndarray  # (N,) int64: the closest kept vector ranked before it (-1: none compared)
    similarity: (
        np.ndarray
    )  # (N,) float32: its cosine similarity (> threshold exactly when removed; -1: none)
    method: str  # "exact" or "clustered"
    clusters: int = 1
    products: int = 0  # dot products computed, the work done
    boundary: int = 0  # (vector, neighbouring cluster) pairs searched across a border


def semantic_dedup(
    x: np.ndarray,
    rank: np.ndarray,
    threshold: float,
    method: str = "auto",
    seed: int = 0,
    block: int = BLOCK,
    cluster_size: int = CLUSTER_SIZE,
    on_block: Callable[[int], None] | None = None,
) -> DedupResult:
    """Decide for each unit row of x whether it duplicates a kept row ranked before it (lower rank first).

    on_block(count) is called after each block of count vectors is decided (a progress bar).
    """
    if method not in ("auto", "exact", "clustered"):
        raise ValueError(f"method must be auto, exact or clustered, got {method!r}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(x)
    if method == "auto":
        method = "exact" if n <= EXACT_MAX else "clustered"
    k = default_clusters(n, cluster_size) if method == "clustered" and n else 1
    labels = np.zeros(n, dtype=np.int64)
    near = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    if k > 1:
        with _single_threaded_blas(True):
            centroids = spherical_kmeans(x, k, seed=seed)
        labels, _ = assign(x, centroids)
        slack = min(1.0, BOUNDARY_SIGMAS / math.sqrt(x.shape[1]))
        near = _boundary(x, labels, centroids, threshold, slack)
    state = _State(x, labels, k, threshold)
    searched = _search_sets(labels, near, n)
    order = np.argsort(rank, kind="stable")
    with _single_threaded_blas(k > 1):
        for start in range(0, n, block):
            state.decide(order[start : start + block], searched, block)
            if on_block is not None:
                on_block(len(order[start : start + block]))
    return DedupResult(
        removed=state.removed,
        match=state.match,
        similarity=state.similarity,
        method="exact" if k == 1 else "clustered",
        clusters=k,
        products=state.products,
        boundary=len(near[0]),
    )


def _single_threaded_blas(wanted: bool) -> AbstractContextManager[object]:
    """BLAS on one thread: cluster tiles are small, and a threaded BLAS spends more time syncing
    its threads on them than multiplying (ten times slower on two busy cores, measured)."""
    if not wanted:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _boundary(
    x: np.ndarray, labels: np.ndarray, centroids: np.ndarray, threshold: float, slack: float
) -> tuple[np.ndarray, np.ndarray]:
    """(vector, other cluster) for every vector within slack * r of the bisector of its cluster and the other."""
    radius = (
        slack * math.sqrt(max(0.0, 2.0 - 2.0 * threshold)) + 1e-3
    )  # 1e-3: float32 rounding of the dots
    gram = np.clip(centroids @ centroids.T, -1.0, 1.0)
    distance = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * gram)).astype(np.float32)  # |cA - cB|
    points, others = [], []
    for start in range(0, len(x), BLOCK):
        dots = x[start : start + BLOCK] @ centroids.T
        rows = np.arange(len(dots))
        own = labels[start : start + BLOCK]
        close = dots[rows, own][:, None] - dots <= radius * distance[own]
        close[rows, own] = False
        row, col = np.nonzero(close)
        points.append(row + start)
        others.append(col)
    return np.concatenate(points).astype(np.int64), np.concatenate(others).astype(np.int64)


def _search_sets(
    labels: np.ndarray, near: tuple[np.ndarray, np.ndarray], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """CSR (starts, clusters): the clusters each vector is compared in, its own first."""
    points = np.concatenate([np.arange(n, dtype=np.int64), near[0]])
    clusters = np.concatenate([labels, near[1]])
    order = np.argsort(points, kind="stable")
    starts = np.searchsorted(points[order], np.arange(n + 1))
    return starts, clusters[order]


class _State:
    """Kept vectors per cluster (contiguous segments of one array), and each vector's decision so far."""

    def __init__(self, x: np.ndarray, labels: np.ndarray, k: int, threshold: float) -> None:
        self.x, self.labels, self.threshold = x, labels, threshold
        n = len(x)
        sizes = np.bincount(labels, minlength=k)
        self.segment = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.filled = np.zeros(k, dtype=np.int64)
        self.kept_vectors = np.empty_like(x)
        self.kept_ids = np.empty(n, dtype=np.int64)
        self.removed = np.zeros(n, dtype=bool)
        self.match = np.full(n, -1, dtype=np.int64)
        self.similarity = np.full(n, -1.0, dtype=np.float32)
        self.products = 0

    def _offer(self, ids: np.ndarray, sims: np.ndarray, candidates: np.ndarray) -> None:
        """Raise each id's closest-kept similarity where a row of sims (columns: candidates) beats it."""
        best = sims.argmax(axis=1)
        values = sims[np.arange(len(ids)), best]
        better = values > self.similarity[ids]
        self.similarity[ids[better]] = values[better]
        self.match[ids[better]] = candidates[best[better]]

    def decide(self, ids: np.ndarray, searched: tuple[np.ndarray, np.ndarray], block: int) -> None:
        """Decide one block of ids (in rank order): against kept vectors first, then among themselves."""
        starts, clusters = searched
        counts = starts[ids + 1] - starts[ids]
        rows = np.repeat(np.arange(len(ids)), counts)
        wanted = (
            clusters[np.concatenate([np.arange(starts[i], starts[i + 1]) for i in ids])]
            if len(ids)
            else rows
        )
        for cluster in np.unique(wanted):
            have = int(self.filled[cluster])
            if not have:
                continue
            mine = ids[rows[wanted == cluster]]
            begin = int(self.segment[cluster])
            for col in range(0, have, block):
                kept = self.kept_vectors[begin + col : begin + min(have, col + block)]
                sims = self.x[mine] @ kept.T
                self.products += sims.size
                self._offer(mine, sims, self.kept_ids[begin + col : begin + col + len(kept)])
        self._within(ids, rows, wanted)
        for index in ids[~self.removed[ids]]:  # keep: append to its cluster's segment
            cluster = self.labels[index]
            slot = self.segment[cluster] + self.filled[cluster]
            self.kept_vectors[slot] = self.x[index]
            self.kept_ids[slot] = index
            self.filled[cluster] += 1

    def _within(self, ids: np.ndarray, rows: np.ndarray, wanted: np.ndarray) -> None:
        """Pairs inside the block: each id meets the earlier ids of the clusters it searches; only kept ones count.

        Removals inside a block are settled in rank order over the (sparse) pairs above the
        threshold; then each id's closest earlier kept id raises its similarity.
        """
        own = self.labels[ids]
        threshold = self.threshold
        tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        hits: dict[int, list[int]] = {}
        for cluster in np.unique(wanted):
            queries = rows[wanted == cluster]  # block positions searching this cluster
            members = np.flatnonzero(own == cluster)  # block positions belonging to it
            if not len(queries) or not len(members):
                continue
            sims = self.x[ids[queries]] @ self.x[ids[members]].T
            self.products += sims.size
            sims[queries[:, None] <= members[None, :]] = -np.inf  # only ids ranked before
            tiles.append((queries, members, sims))
            for q, m in zip(*np.nonzero(sims > threshold)):
                hits.setdefault(int(queries[q]), []).append(int(members[m]))
        removed = self.similarity[ids] > threshold
        for row in sorted(hits):
            if not removed[row]:
                removed[row] = any(not removed[m] for m in hits[row])
        for queries, members, sims in tiles:
            sims[:, removed[members]] = -np.inf  # only kept ids count as matches
            self._offer(ids[queries], sims, ids[members])
        self.removed[ids] = self.similarity[ids] > threshold
