"""The store: atomic commits, also when two processes finish the same lot at the same moment."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from opensem.core.digests import DigestCache
from opensem.core.store import Store

ROUNDS = 25


def _commit_at_the_barrier(root: str, lot: str, barrier: object, failures: object) -> None:
    store = Store(Path(root))
    tmp = store.begin(lot)
    (tmp / "out" / "result.txt").write_text(f"result of {lot}")
    output = DigestCache(None).directory(tmp / "out")
    barrier.wait()  # type: ignore[attr-defined]
    try:
        store.commit(tmp, lot, {"lot": lot, "output": output})
    except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
        failures.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def test_two_processes_committing_the_same_lot_both_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    failures = context.Queue()
    store = Store(tmp_path / "store")
    for index in range(ROUNDS):
        lot = f"{index:02x}" + "0" * 62
        barrier = context.Barrier(2)
        workers = [
            context.Process(
                target=_commit_at_the_barrier, args=(str(store.root), lot, barrier, failures)
            )
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
            assert worker.exitcode == 0
        assert store.has(lot) and store.intact(lot, DigestCache(None))
    found = []
    while not failures.empty():
        found.append(failures.get())
    assert found == []
    assert list((store.root / ".tmp").iterdir()) == []  # the loser dropped its copy


def test_a_commit_never_leaves_a_half_entry(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    tmp = store.begin("ab" * 32)
    (tmp / "out" / "x").write_text("x")
    assert not store.has("ab" * 32)  # written but not committed: it does not count
    store.commit(tmp, "ab" * 32, {"output": DigestCache(None).directory(tmp / "out")})
    assert store.has("ab" * 32) and not tmp.exists()
