"""Semantic dedup search: the keep rule, exact and clustered search agreeing, bounded work on cliques."""

from __future__ import annotations

import numpy as np
import pytest

from opensem.curate.kmeans import assign, spherical_kmeans
from opensem.curate.search import semantic_dedup

DIM = 64


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered_with_copies(n: int, copies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vectors around 40 topics, plus near-copies (cosine about 0.99) of random earlier ones; returns
    (x, source of each copy)."""
    rng = np.random.default_rng(seed)
    topics = unit(rng.standard_normal((40, DIM)))
    x = unit(topics[rng.integers(0, 40, n)] + rng.standard_normal((n, DIM)) * 0.12)
    sources = rng.choice(n, copies, replace=False)
    near = unit(x[sources] + rng.standard_normal((copies, DIM)) * 0.01)
    return np.concatenate([x, near]), sources


def test_planted_copies_are_removed_and_the_rest_kept() -> None:
    x, sources = clustered_with_copies(1500, 60)
    result = semantic_dedup(x, np.arange(len(x)), 0.95, method="exact")
    removed = set(np.flatnonzero(result.removed).tolist())
    assert removed == set(range(1500, 1560))  # the copies rank after their sources, so they go
    assert all(result.match[1500 + i] == sources[i] for i in range(60))
    assert np.all(result.similarity[result.removed] > 0.95)
    assert np.all(result.similarity[~result.removed] <= 0.95)


def test_the_better_ranked_record_of_a_pair_is_kept() -> None:
    x, _ = clustered_with_copies(300, 20)
    rank = np.arange(len(x))[::-1].copy()  # now the copies rank first
    result = semantic_dedup(x, rank, 0.95)
    removed = np.flatnonzero(result.removed)
    assert len(removed) == 20 and removed.max() < 300  # the sources go instead


def test_a_chain_keeps_both_ends() -> None:
    """a ~ b and b ~ c above the threshold, a and c below it: only b goes (it resembles a kept record)."""
    angle = np.deg2rad(14.0)  # cos 14 deg = 0.970 > 0.95; cos 28 deg = 0.883
    base = np.zeros((3, DIM), dtype=np.float32)
    for row, k in enumerate((0, 1, 2)):
        base[row, 0], base[row, 1] = np.cos(k * angle), np.sin(k * angle)
    result = semantic_dedup(base, np.arange(3), 0.95, method="exact")
    assert result.removed.tolist() == [False, True, False]
    assert result.match[1] == 0 and result.similarity[2] == pytest.approx(
        np.cos(2 * angle), abs=1e-5
    )


def test_outcome_follows_rank_not_row_order() -> None:
    x, _ = clustered_with_copies(800, 50, seed=3)
    rank = np.random.default_rng(1).permutation(len(x))
    first = semantic_dedup(x, rank, 0.95)
    shuffle = np.random.default_rng(2).permutation(len(x))
    second = semantic_dedup(x[shuffle], rank[shuffle], 0.95)
    assert set(np.flatnonzero(first.removed)) == set(
        shuffle[np.flatnonzero(second.removed)].tolist()
    )


@pytest.mark.parametrize("block", [4096, 257])
def test_clustered_search_finds_what_exact_search_finds(block: int) -> None:
    x, _ = clustered_with_copies(6000, 300, seed=5)
    rank = np.random.default_rng(0).permutation(len(x))
    exact = semantic_dedup(x, rank, 0.95, method="exact", block=block)
    clustered = semantic_dedup(x, rank, 0.95, method="clustered", cluster_size=500, block=block)
    assert clustered.method == "clustered" and clustered.clusters == 13
    assert clustered.products < exact.products / 3  # the point of clustering
    assert np.array_equal(exact.removed, clustered.removed)
    assert np.array_equal(exact.match[exact.removed], clustered.match[clustered.removed])


def test_a_large_clique_keeps_one_record_with_linear_memory() -> None:
    """3,000 near-copies of one text: one survives; only kept records are compared, so the work stays small."""
    rng = np.random.default_rng(0)
    centre = unit(rng.standard_normal((1, DIM)))
    clique = unit(centre + rng.standard_normal((3000, DIM)) * 0.005)
    others = unit(rng.standard_normal((500, DIM)))
    x = np.concatenate([clique, others])
    result = semantic_dedup(x, np.arange(len(x)), 0.95, method="exact", block=512)
    assert result.removed[:3000].sum() == 2999 and not result.removed[3000:].any()
    assert result.products < 3500 * 600  # every record against the few kept ones, not all pairs


def test_search_is_deterministic_and_handles_tiny_inputs() -> None:
    x, _ = clustered_with_copies(3000, 100, seed=9)
    a = semantic_dedup(x, np.arange(len(x)), 0.95, method="clustered", cluster_size=300)
    b = semantic_dedup(x, np.arange(len(x)), 0.95, method="clustered", cluster_size=300)
    assert np.array_equal(a.removed, b.removed) and np.array_equal(a.similarity, b.similarity)
    empty = semantic_dedup(np.zeros((0, DIM), dtype=np.float32), np.zeros(0, dtype=np.int64), 0.95)
    assert empty.removed.shape == (0,)
    one = semantic_dedup(x[:1], np.zeros(1, dtype=np.int64), 0.95)
    assert one.removed.tolist() == [False] and one.match.tolist() == [-1]
    with pytest.raises(ValueError, match="method"):
        semantic_dedup(x, np.arange(len(x)), 0.95, method="fast")


def test_kmeans_is_seeded_and_assigns_to_the_nearest_centroid() -> None:
    x, _ = clustered_with_copies(2000, 0)
    c1, c2 = spherical_kmeans(x, 10, seed=4), spherical_kmeans(x, 10, seed=4)
    assert np.array_equal(c1, c2)
    assert np.allclose(np.linalg.norm(c1, axis=1), 1.0, atol=1e-5)
    labels, best = assign(x, c1, block=333)
    assert np.array_equal(labels, (x @ c1.T).argmax(axis=1))
    assert np.allclose(best, (x @ c1.T).max(axis=1))
    with pytest.raises(ValueError, match="k must be"):
        spherical_kmeans(x[:5], 6)
