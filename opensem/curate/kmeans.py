"""Spherical k-means (Lloyd's algorithm on unit vectors) in numpy, deterministic for a seed.

Centroids are trained on a sample of at most SAMPLE_PER_CLUSTER points per cluster, as faiss does:
more points barely move them. The clustering only decides which pairs are compared first;
opensem.curate.search makes the result exact whatever the clusters are.
"""

from __future__ import annotations

import numpy as np

SAMPLE_PER_CLUSTER = 256
BLOCK = 8192


def assign(
    x: np.ndarray, centroids: np.ndarray, block: int = BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the most similar centroid for each row, and that similarity (blockwise, bounded memory)."""
    labels = np.empty(len(x), dtype=np.int64)
    best = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), block):
        dots = x[start : start + block] @ centroids.T
        labels[start : start + block] = dots.argmax(axis=1)
        best[start : start + block] = dots[np.arange(len(dots)), labels[start : start + block]]
    return labels, best


def _normalized(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)


def spherical_kmeans(
    x: np.ndarray, k: int, seed: int = 0, iterations: int = 12, block: int = BLOCK
) -> np.ndarray:
    """k unit centroids for the unit rows of x; stops early once no sample point changes cluster."""
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of points ({n}), got {k}")
    rng = np.random.default_rng(seed)
    limit = SAMPLE_PER_CLUSTER * k
    sample = x[np.sort(rng.choice(n, size=limit, replace=False))] if n > limit else x
    centroids = sample[np.sort(rng.choice(len(sample), size=k, replace=False))].copy()
    previous: np.ndarray | None = None
    for _ in range(iterations):
        labels, best = assign(sample, centroids, block)
        sums = np.zeros_like(centroids)
        for start in range(0, len(sample), block):
            part = labels[start : start + block]
            onehot = np.zeros((k, len(part)), dtype=np.float32)
            onehot[part, np.arange(len(part))] = 1.0
            sums += onehot @ sample[start : start + block]
        counts = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            # An empty cluster restarts at the points its neighbours fit worst (stable order: deterministic).
            sums[empty] = sample[np.argsort(best, kind="stable")[: len(empty)]]
        centroids = _normalized(sums)
        if previous is not None and np.array_equal(previous, labels):
            break
        previous = labels
    return centroids


def default_clusters(n: int, target_size: int) -> int:
    """Clusters for n points so each holds about target_size of them."""
    return max(1, min(n, round(n / target_size)))
