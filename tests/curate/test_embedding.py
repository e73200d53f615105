"""The embedder resolver, the embedding cache and embedding through it (real all-MiniLM-L6-v2, offline)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from opensem.core.digests import DigestCache
from opensem.curate.cache import EmbeddingCache
from opensem.curate.embed import embed_texts
from opensem.curate.embedder import Embedder, bundled_model_dir, is_bundled, resolve_model
from opensem.errors import StageError

TEXTS = ["How long should a double espresso take?", "Why is my shot sour?", "What is crema?"]


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return Embedder(resolve_model("all-MiniLM-L6-v2", None, DigestCache(None)), batch_size=8)


def test_default_names_resolve_to_the_bundled_model(tmp_path: Path) -> None:
    assert (
        is_bundled("all-MiniLM-L6-v2")
        and is_bundled("sentence-transformers/all-MiniLM-L6-v2")
        and not is_bundled("BAAI/bge-small-en")
    )
    digests = DigestCache(tmp_path / "d.json")
    a = resolve_model("all-MiniLM-L6-v2", None, digests)
    b = resolve_model("sentence-transformers/all-MiniLM-L6-v2", None, digests)
    assert a.path == b.path == bundled_model_dir() and (a.path / "modules.json").is_file()
    assert a.digest == b.digest and len(a.digest) == 64


def test_a_local_directory_is_used_as_given_and_digested(tmp_path: Path) -> None:
    copy = tmp_path / "embedder"
    shutil.copytree(bundled_model_dir(), copy)
    ref = resolve_model("./embedder", copy, DigestCache(None))
    assert (
        ref.path == copy
        and ref.digest == resolve_model("all-MiniLM-L6-v2", None, DigestCache(None)).digest
    )
    (copy / "README.md").write_text("edited\n")
    assert (
        resolve_model("./embedder", copy, DigestCache(None)).digest != ref.digest
    )  # a changed model never reuses vectors
    with pytest.raises(StageError, match="does not look like a sentence-transformers model"):
        resolve_model("./empty", tmp_path / "nothing-here", DigestCache(None))


def test_vectors_are_unit_length(minilm: Embedder) -> None:
    vectors = minilm.encode(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.dimension == 384


def test_the_cache_embeds_only_texts_it_lacks(tmp_path: Path, minilm: Embedder) -> None:
    before = minilm.texts_encoded
    with EmbeddingCache(tmp_path, minilm.ref.digest) as cache:
        first, stats = embed_texts(TEXTS + TEXTS[:1], minilm, cache)
        assert (stats.unique, stats.encoded, stats.cached) == (
            3,
            3,
            0,
        )  # a repeated text is embedded once
        assert np.array_equal(first[0], first[3])
    assert minilm.texts_encoded - before == 3
    with EmbeddingCache(tmp_path, minilm.ref.digest) as cache:  # reopened: persisted
        again, stats = embed_texts(["What is a lungo?", *TEXTS], minilm, cache)
        assert (stats.encoded, stats.cached) == (1, 3)
        assert np.array_equal(again[1:], first[:3])
    assert minilm.texts_encoded - before == 4


def test_a_corrupt_cache_is_dropped_not_trusted(tmp_path: Path) -> None:
    vectors = np.eye(3, 4, dtype=np.float32)
    with EmbeddingCache(tmp_path, "m") as cache:
        cache.put_many(["a", "b", "c"], vectors)
    with sqlite3.connect(tmp_path / "m.sqlite") as conn:
        conn.execute("UPDATE vectors SET vector = x'00' WHERE digest = 'b'")  # a torn row
    with EmbeddingCache(tmp_path, "m") as cache:
        found = cache.get_many(["a", "b", "c", "d"])
        assert sorted(found) == ["a", "c"] and np.array_equal(found["c"], vectors[2])
        assert len(cache) == 2  # the bad row is gone
    (tmp_path / "m.sqlite").write_bytes(b"this is not a database" * 100)
    with EmbeddingCache(tmp_path, "m") as cache:
        assert cache.get_many(["a"]) == {} and len(cache) == 0
