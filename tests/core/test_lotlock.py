"""One builder per lot: a second build waits, names whose build it waits for, and reuses the result;
a killed holder's lock is free at once and the next holder knows it takes over."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from opensem.core.lotlock import lot_lock
from opensem.core.store import Store
from tests.core.fake import FakeRunner, build, chain

HOLD = """
import os, signal, sys, time
from pathlib import Path
from opensem.core.lotlock import lot_lock
with lot_lock(Path(sys.argv[1]), "lot1", "other:stage", lambda holder: None):
    print("held", flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(1.0)
"""


def holder(folder: Path, how: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(folder), how],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_second_taker_waits_for_the_holder_and_is_told_who_it_is(tmp_path: Path) -> None:
    child = holder(tmp_path, "finish")
    seen: list[dict] = []
    with lot_lock(
        tmp_path, "lot1", "me:stage", lambda record: seen.append(record or {})
    ) as abandoned:
        pass  # reached only after the holder let go: on_wait ran because the lock was taken
    assert (
        seen
        and seen[0]["pid"] == child.pid
        and seen[0]["who"] == "other:stage"
        and seen[0]["state"] == "running"
    )
    assert abandoned is None


def test_a_killed_holder_frees_the_lot_and_is_named_as_abandoned(tmp_path: Path) -> None:
    child = holder(tmp_path, "die")
    child.wait()
    assert child.returncode == -9
    with lot_lock(
        tmp_path, "lot1", "me:stage", lambda record: pytest.fail("a dead process holds no lock")
    ) as abandoned:
        assert (
            abandoned is not None
            and abandoned["pid"] == child.pid
            and abandoned["who"] == "other:stage"
        )
    with lot_lock(tmp_path, "lot1", "me:stage", lambda record: None) as later:
        assert later is None  # a clean finish leaves nothing to take over


def test_a_build_that_waited_reuses_what_the_other_build_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = chain(tmp_path)
    first, _ = build(graph)
    store, lot_b = Store(tmp_path / "build" / "store"), first.resolver.lots["b"]
    saved = tmp_path / "saved-b"
    shutil.copytree(store.entry(lot_b), saved)
    store.drop(lot_b)

    waiting = threading.Event()
    import opensem.core.engine as engine

    real_describe = engine.describe
    monkeypatch.setattr(
        engine, "describe", lambda record: (waiting.set(), real_describe(record))[1]
    )
    runner = FakeRunner()
    outcome: list[object] = []
    with lot_lock(store.root / ".locks", lot_b, "other:b", lambda record: None):
        worker = threading.Thread(target=lambda: outcome.append(build(graph, runner)))
        worker.start()
        assert waiting.wait(30), "the build did not wait for the held lot"
        staging = store.begin(lot_b)  # the other build finishes b
        shutil.rmtree(staging)
        shutil.copytree(saved, staging)
        store.commit(staging, lot_b, store_meta(saved))
    worker.join(60)
    session, code = outcome[0]  # type: ignore[misc]
    assert code == 0 and runner.runs == [] and "b" in session.hits and store.has(lot_b)


def store_meta(entry: Path) -> dict:
    import json

    return json.loads((entry / "meta.json").read_text())
