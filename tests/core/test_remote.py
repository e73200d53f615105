"""The shared stage cache: a second clone builds nothing, entries are checked and a bad one is
ignored, a read-only cache receives nothing, and S3 (moto's server) works like a folder."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from opensem.core.lock import lots_of_lock
from opensem.core.remote import RemoteCache, cache_from, pull_lots, push_lots
from opensem.core.store import Store
from opensem.errors import UsageError
from tests.core.fake import FakeRunner, build, chain

if TYPE_CHECKING:
    from tests.servers.s3 import RestartableS3


def clone(root: Path) -> Path:
    chain(root)  # the same source.txt and stages in another folder: another machine's checkout
    return root


def test_a_second_clone_takes_every_stage_from_the_cache(tmp_path: Path) -> None:
    shared = str(tmp_path / "shared")
    first = chain(clone(tmp_path / "a"))
    session, _ = build(first, remote=RemoteCache(shared, "read-write", first.project_root))
    assert session.ran == ["a", "b", "c"] and len(list((tmp_path / "shared").glob("*/*.json"))) == 3

    second = chain(clone(tmp_path / "b"))
    runner = FakeRunner()
    again, code = build(second, runner, remote=RemoteCache(shared, "read", second.project_root))
    assert code == 0 and runner.runs == [] and again.pulled == ["a", "b", "c"]
    assert (tmp_path / "b" / "manifests" / "fake.lock").read_text() == (
        tmp_path / "a" / "manifests" / "fake.lock"
    ).read_text()
    meta = Store(tmp_path / "b" / "build" / "store").meta(again.resolver.lots["c"])
    assert meta["pulled_from"] == shared and Store(tmp_path / "b" / "build" / "store").intact(
        again.resolver.lots["c"], again.digests
    )


def test_a_corrupt_entry_is_reported_and_built_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    first = chain(clone(tmp_path / "a"))
    session, _ = build(first, remote=RemoteCache(str(shared), "read-write", first.project_root))
    lot_b = session.resolver.lots["b"]
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:  # same names, other bytes
        data = b"not what was built"
        info = tarfile.TarInfo("./result.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (shared / lot_b[:2] / f"{lot_b}.tar").write_bytes(payload.getvalue())

    runner = FakeRunner()
    second = chain(clone(tmp_path / "b"))
    again, code = build(
        second, runner, remote=RemoteCache(str(shared), "read", second.project_root)
    )
    assert (
        code == 0 and runner.runs == ["b"] and again.pulled == ["a", "c"]
    )  # c's input digest is b's output: it still matches
    said = capsys.readouterr().err
    assert (
        f"cache entry {lot_b[:12]} unusable (its files digest to" in said
        and "building it here" in said
    )
    assert (
        Store(tmp_path / "b" / "build" / "store").out_dir(lot_b) / "result.txt"
    ).read_text() != "not what was built"


def test_a_read_only_cache_receives_nothing_and_push_fills_it(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    graph = chain(clone(tmp_path / "a"))
    session, _ = build(graph, remote=RemoteCache(str(shared), "read", graph.project_root))
    assert session.ran == ["a", "b", "c"] and not shared.exists()
    lots = lots_of_lock(json.loads((tmp_path / "a" / "manifests" / "fake.lock").read_text()))
    writer = RemoteCache(str(shared), "read-write", graph.project_root)
    assert push_lots(writer, session.store, lots) == (["a", "b", "c"], [], [])
    assert push_lots(writer, session.store, lots) == ([], ["a", "b", "c"], [])

    other = Store(tmp_path / "b" / "build" / "store")
    found = pull_lots(writer, other, session.digests, lots)
    assert {name: f.status for name, f in found.items()} == {
        "a": "hit",
        "b": "hit",
        "c": "hit",
    } and all(other.has(lot) for lot in lots.values())


def test_the_environment_names_the_cache_over_the_manifest(tmp_path: Path) -> None:
    assert cache_from(None, tmp_path, {}) is None
    assert cache_from({"url": "shared", "mode": "read"}, tmp_path, {}).root == str(
        (tmp_path / "shared").resolve()
    )
    chosen = cache_from(
        {"url": "shared", "mode": "read"},
        tmp_path,
        {"OPENSEM_CACHE": str(tmp_path / "ci"), "OPENSEM_CACHE_MODE": "read-write"},
    )
    assert chosen.url == str(tmp_path / "ci") and chosen.writable
    with pytest.raises(UsageError, match="OPENSEM_CACHE_MODE is 'write'"):
        cache_from(None, tmp_path, {"OPENSEM_CACHE": "x", "OPENSEM_CACHE_MODE": "write"})


def test_an_s3_cache_on_motos_server(s3_url: str, tmp_path: Path) -> None:
    url = f"{s3_url}/stage-cache"
    first = chain(clone(tmp_path / "a"))
    build(first, remote=RemoteCache(url, "read-write", first.project_root))
    runner = FakeRunner()
    second = chain(clone(tmp_path / "b"))
    again, code = build(second, runner, remote=RemoteCache(url, "read", second.project_root))
    assert code == 0 and runner.runs == [] and again.pulled == ["a", "b", "c"]


def test_a_push_cut_by_the_s3_server_stopping_counts_for_nothing_and_the_next_push_finishes(
    stoppable_s3: RestartableS3,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = chain(clone(tmp_path / "a"))
    cache = RemoteCache(f"{stoppable_s3.url}/stage-cache", "read-write", first.project_root)
    real_pipe = cache.fs.pipe_file

    def server_dies_after_a_tar(path: str, data: bytes, **kwargs: object) -> None:
        real_pipe(path, data, **kwargs)
        if path.endswith(".tar"):
            stoppable_s3.stop()  # a real stop: the meta upload that follows finds no server

    monkeypatch.setattr(cache.fs, "pipe_file", server_dies_after_a_tar)
    session, code = build(first, remote=cache)
    assert code == 0 and session.ran == ["a", "b", "c"]  # the build's own results are safe locally
    assert capsys.readouterr().err.count("not uploaded to the cache") == 3
    monkeypatch.undo()

    stoppable_s3.start()
    cache.fs.invalidate_cache()
    lots = {name: session.resolver.lots[name] for name in ("a", "b", "c")}
    assert cache.fs.exists(cache._key(lots["a"], ".tar")) and not any(
        cache.has(lot) for lot in lots.values()
    )  # a tar alone counts for nothing
    assert push_lots(cache, session.store, lots) == (
        ["a", "b", "c"],
        [],
        [],
    )  # the rerun finishes the job

    runner = FakeRunner()
    second = chain(clone(tmp_path / "b"))
    again, code = build(second, runner, remote=RemoteCache(cache.url, "read", second.project_root))
    assert code == 0 and runner.runs == [] and again.pulled == ["a", "b", "c"]


def test_an_upload_cut_before_its_meta_leaves_nothing_that_counts_and_push_finishes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    first = chain(clone(tmp_path / "a"))
    cache = RemoteCache(str(shared), "read-write", first.project_root)
    real_pipe = cache.fs.pipe_file
    cut: list[str] = []

    def storage_goes_away(path: str, data: bytes, **kwargs: object) -> None:
        # The first entry's tar arrived; the server dies before its meta
        if path.endswith(".json") and not cut:
            cut.append(path)
            raise ConnectionError("the storage server went away")
        real_pipe(path, data, **kwargs)

    monkeypatch.setattr(
        cache.fs, "pipe_file", storage_goes_away
    )  # fsspec shares one local filesystem object: undone after
    session, code = build(first, remote=cache)
    assert code == 0 and session.ran == [
        "a",
        "b",
        "c",
    ]  # the build's results are safe locally either way
    assert "not uploaded to the cache: ConnectionError" in capsys.readouterr().err
    lot_a = session.resolver.lots["a"]
    assert (shared / lot_a[:2] / f"{lot_a}.tar").is_file() and not cache.has(
        lot_a
    )  # a tar without its meta does not count

    runner = FakeRunner()
    second = chain(clone(tmp_path / "b"))
    _, code = build(second, runner, remote=RemoteCache(str(shared), "read", second.project_root))
    assert code == 0 and runner.runs == ["a"]  # only the entry whose upload was cut is built again

    lots = lots_of_lock(json.loads((tmp_path / "a" / "manifests" / "fake.lock").read_text()))
    assert push_lots(
        RemoteCache(str(shared), "read-write", first.project_root), session.store, lots
    ) == (["a"], ["b", "c"], [])
