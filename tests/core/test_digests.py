"""Digests and lot numbers: pinned values, so any accidental change to hashing shows."""

import os
from pathlib import Path

from opensem.core.digests import DigestCache, canonical_json, digest_tree
from opensem.core.lots import lot_number


def test_canonical_json_sorts_keys_and_is_compact() -> None:
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'


def test_lot_number_is_pinned() -> None:
    lot = lot_number("split", "1", {"test_fraction": 0.1, "seed": 42}, {"records": "0" * 64})
    assert lot == PINNED_LOT


def test_directory_digest_is_pinned(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_bytes(b"hello\n")
    (tmp_path / "sub" / "b.txt").write_bytes(b"world\n")
    assert digest_tree(tmp_path) == PINNED_DIR
    assert DigestCache(None).directory(tmp_path) == PINNED_DIR


def test_lot_changes_with_every_part() -> None:
    base = lot_number("train", "1", {"lr": 1}, {"train": "a"})
    assert (
        len(
            {
                base,
                lot_number("train", "2", {"lr": 1}, {"train": "a"}),
                lot_number("train", "1", {"lr": 2}, {"train": "a"}),
                lot_number("train", "1", {"lr": 1}, {"train": "b"}),
                lot_number("eval", "1", {"lr": 1}, {"train": "a"}),
            }
        )
        == 5
    )


def test_cache_skips_unchanged_files_and_notices_edits(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "doc.txt"
    source.write_text("one")
    cache_file = tmp_path / "cache.json"
    first = DigestCache(cache_file)
    digest = first.file(source)
    first.save()
    reads: list[Path] = []
    import opensem.core.digests as lots

    real = lots.digest_file
    monkeypatch.setattr(lots, "digest_file", lambda p: reads.append(p) or real(p))
    second = DigestCache(cache_file)
    assert second.file(source) == digest and reads == []
    source.write_text("two")
    os.utime(source, ns=(1, 1))
    assert second.file(source) != digest and reads == [source]


def test_corrupt_cache_is_dropped(tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.json"
    cache_file.write_text("{not json")
    (tmp_path / "x").write_text("x")
    assert DigestCache(cache_file).file(tmp_path / "x") == digest_tree(tmp_path / "x")


def test_large_files_hash_on_threads_the_same(tmp_path: Path) -> None:
    for index in range(4):
        (tmp_path / f"big{index}").write_bytes(os.urandom(1 << 20))
    cache = DigestCache(None)
    assert cache.directory(tmp_path) == digest_tree(tmp_path)


PINNED_LOT = "2946c2060ba755292733412109326c3912029ca2848fd89a8be9bbbd20e4a839"
PINNED_DIR = "343dbd43f93ff7d33b3d7e857f00f118e18a6f48a046bdadd5ef0b7e16e885db"
