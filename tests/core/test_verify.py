"""verify on each kind of mismatch, and the lock reader on each kind of damage, on the fake stage kind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from opensem.core.digests import DigestCache
from opensem.core.lock import DamagedLock, read_lock
from opensem.core.store import Store
from opensem.core.verify import verify
from tests.core.fake import build, chain, node, touch_later


def check(root: Path, graph: object, lock: dict | None = "read") -> list[str]:  # type: ignore[assignment]
    lock = read_lock(root / "manifests" / "fake.lock") if lock == "read" else lock
    report = verify(graph, lock, Store(root / "build" / "store"), DigestCache(None))  # type: ignore[arg-type]
    return report.mismatches


@pytest.fixture
def built(tmp_path: Path) -> Path:
    build(chain(tmp_path))
    return tmp_path


def test_a_fresh_build_verifies(built: Path) -> None:
    assert check(built, chain(built)) == []


def test_no_lock(built: Path) -> None:
    assert check(built, chain(built), None) == [
        "no lock file: build once with `opensem build` and commit the lock"
    ]


def test_stages_missing_from_or_extra_in_the_lock(built: Path) -> None:
    assert check(built, chain(built, node("d", inputs={}))) == [
        "d: not in the lock (never built, or the build stopped before it)"
    ]
    lock = read_lock(built / "manifests" / "fake.lock")
    lock["stages"]["z"] = dict(lock["stages"]["a"])  # type: ignore[index]
    assert (
        check(built, chain(built), lock)[0]
        == "z: in the lock but not in the manifest's stage graph"
    )


def test_a_lock_edited_by_hand(built: Path) -> None:
    lock = read_lock(built / "manifests" / "fake.lock")
    lock["stages"]["b"]["params"]["text"] = "edited"  # type: ignore[index]
    assert check(built, chain(built), lock) == [
        "b: the lock's lot does not match its own params and inputs (was the lock edited by hand?)"
    ]


def test_code_params_and_sources_that_moved_since_the_lock(built: Path) -> None:
    assert check(built, chain(built, version_b="2")) == [
        "b: stage code is version 2, the lock was built with 1"
    ]
    assert check(built, chain(built, text_b="B")) == [
        "b: manifest params differ from the lock (text)"
    ]
    (built / "source.txt").write_text("changed")
    touch_later(built / "source.txt")
    assert check(built, chain(built)) == [
        "a: input src: source source.txt changed since the lock was written"
    ]


def test_the_store_disagrees_with_the_lock(built: Path) -> None:
    lock = read_lock(built / "manifests" / "fake.lock")
    store = Store(built / "build" / "store")
    lot = lock["stages"]["c"]["lot"]  # type: ignore[index]
    result = store.out_dir(lot) / "result.txt"
    os.chmod(result, 0o644)
    result.write_text("tampered")
    [mismatch] = check(built, chain(built))
    assert mismatch.startswith(f"c: stored output of lot {lot[:12]} was tampered with")
    meta = store.entry(lot) / "meta.json"
    os.chmod(meta, 0o644)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "output": "1" * 64}))
    assert check(built, chain(built))[0].startswith(
        f"c: store entry {lot[:12]} records output 111111111111, the lock says"
    )


def test_a_missing_store_is_a_note_not_a_mismatch(built: Path) -> None:
    store = Store(built / "build" / "store")
    lock = read_lock(built / "manifests" / "fake.lock")
    for entry in lock["stages"].values():  # type: ignore[union-attr]
        store.drop(entry["lot"])
    report = verify(chain(built), lock, store, DigestCache(None))
    assert report.mismatches == [] and len(report.notes) == 3 and report.checked == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"stages": {"a": {"lot": "x"}', "not valid JSON"),  # cut off while writing
        ("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> other\n", "not valid JSON"),  # a merge conflict
        ('["stages"]', "no `stages` mapping"),
        ('{"stages": {"a": {"params": {}}}}', "lock entries without a lot: a"),
    ],
)
def test_a_damaged_lock_is_never_trusted(tmp_path: Path, text: str, message: str) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text(text)
    with pytest.raises(DamagedLock, match=message) as info:
        read_lock(lock)
    assert info.value.location.file == str(lock) and "restore it from git" in info.value.hint
