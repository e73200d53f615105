"""The engine on the fake stage kind: only stale stages run, early cutoff, damaged store entries and
locks, failures that leave nothing behind, and what a stage asks the lock to record."""

from __future__ import annotations

import json
import os
from pathlib import Path

from opensem.core.store import Store
from opensem.errors import GateFailed, StageError
from tests.core.fake import FakeRunner, build, chain, node, touch_later


def test_a_second_build_runs_nothing_and_the_lock_records_each_stage(tmp_path: Path) -> None:
    graph = chain(tmp_path)
    runner = FakeRunner()
    build(graph, runner)
    assert runner.runs == ["a", "b", "c"]
    again = FakeRunner()
    session, code = build(graph, again)
    assert code == 0 and again.runs == [] and session.hits == ["a", "b", "c"]
    lock = json.loads((tmp_path / "manifests" / "fake.lock").read_text())
    assert sorted(lock["stages"]) == ["a", "b", "c"] and lock["published"] == {
        "tag": "t1"
    }  # c asked for that entry
    meta = Store(tmp_path / "build" / "store").meta(lock["stages"]["c"]["lot"])
    assert meta["versions"]["fake"] == "1" and meta["lock"] == {"published": {"tag": "t1"}}


def test_a_change_that_yields_the_same_bytes_stops_there(tmp_path: Path) -> None:
    graph = chain(tmp_path)
    build(graph)
    (tmp_path / "source.txt").write_text("HELLO")  # a lowercases its source: same output
    touch_later(tmp_path / "source.txt")
    runner = FakeRunner()
    build(graph, runner)
    assert runner.runs == ["a"]


def test_an_edited_store_entry_is_dropped_and_rebuilt(tmp_path: Path) -> None:
    graph = chain(tmp_path)
    session, _ = build(graph)
    store = Store(tmp_path / "build" / "store")
    result = store.out_dir(session.resolver.lots["b"]) / "result.txt"
    os.chmod(result, 0o644)
    result.write_text("tampered")
    runner = FakeRunner()
    build(graph, runner)
    assert runner.runs == ["b"]  # rebuilt to the same bytes, so c is a store hit
    assert result.read_text() != "tampered" and not result.stat().st_mode & 0o222  # frozen again


def test_a_failing_stage_stores_nothing_and_plan_remembers_why(tmp_path: Path) -> None:
    graph = chain(tmp_path, node("d", kind="fail", inputs={}))
    session, code = build(graph)
    assert (
        code != 0 and isinstance(session.error, StageError) and session.error.message == "d broke"
    )
    lot = session.resolver.lots["d"]
    store = Store(tmp_path / "build" / "store")
    assert not store.has(lot) and store.failure(lot) == {
        "blocks": False,
        "error": "StageError",
        "message": "d broke",
        "stage": "d",
    }
    assert not any(
        p.name.startswith(lot[:16]) for p in (tmp_path / "build" / "store" / ".tmp").iterdir()
    )  # no half entry left


def test_a_blocking_outcome_is_recorded_as_blocking(tmp_path: Path) -> None:
    graph = chain(tmp_path, node("gate", kind="hold", inputs={}))
    session, _ = build(graph)
    assert isinstance(session.error, GateFailed)
    assert (
        Store(tmp_path / "build" / "store").failure(session.resolver.lots["gate"])["blocks"] is True
    )  # type: ignore[index]


def test_a_damaged_lock_is_reported_and_replaced_by_a_sound_one(tmp_path: Path, capsys) -> None:
    graph = chain(tmp_path)
    build(graph)
    lock = tmp_path / "manifests" / "fake.lock"
    good = lock.read_text()
    for damaged in (good[: len(good) // 2], "<<<<<<< HEAD\n" + good, '{"stages": {"a": 3}}'):
        lock.write_text(damaged)
        runner = FakeRunner()
        build(graph, runner)
        assert runner.runs == []  # nothing built is lost: the store still answers
        assert "planning as if there were no lock" in capsys.readouterr().err
        assert lock.read_text() == good
