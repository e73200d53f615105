"""Every branch of the staleness reasons, each with its stable code, on the fake stage kind."""

from __future__ import annotations

import json
from pathlib import Path

from opensem.core.digests import DigestCache
from opensem.core.graph import StageGraph
from opensem.core.lock import read_lock
from opensem.core.lots import LOCK_FORMAT
from opensem.core.plan import REASON_CODES, Plan, make_plan
from opensem.core.store import Store
from tests.core.fake import build, chain, touch_later


def plan_of(
    graph: StageGraph, lock: dict | None = None, force: frozenset[str] = frozenset()
) -> Plan:
    root = graph.project_root
    lock = lock if lock is not None else read_lock(root / "manifests" / "fake.lock")
    return make_plan(graph, Store(root / "build" / "store"), DigestCache(None), lock, force)


def codes(plan: Plan, name: str) -> list[str]:
    return [reason.code for reason in plan.stage(name).reasons]


def test_a_fresh_project_is_not_built_and_later_stages_wait(tmp_path: Path) -> None:
    plan = plan_of(chain(tmp_path))
    assert codes(plan, "a") == ["not-built"] and plan.stage("a").lot is not None
    assert codes(plan, "b") == ["waits-for"] and plan.stage("b").lot is None
    assert plan.stage("b").reasons[0].as_json() == {
        "code": "waits-for",
        "text": "waits for a (stale)",
        "stages": ["a"],
    }


def test_a_stage_waiting_on_one_upstream_through_two_slots_names_it_once(tmp_path: Path) -> None:
    from opensem.core.graph import UpstreamInput
    from tests.core.fake import node

    twice = node(
        "d",
        inputs={
            "x": UpstreamInput(stage="a"),
            "y": UpstreamInput(stage="a"),
            "z": UpstreamInput(stage="b"),
        },
        text="d",
    )
    assert plan_of(chain(tmp_path, twice)).stage("d").reasons[0].text == "waits for a, b (stale)"


def test_each_kind_of_change_has_its_own_code(tmp_path: Path) -> None:
    graph = chain(tmp_path)
    build(graph)
    assert all(stage.status == "up-to-date" for stage in plan_of(graph).stages)

    # The code of b changed.
    assert codes(plan_of(chain(tmp_path, version_b="2")), "b") == ["version-changed"]
    # A setting of b changed: named by its key, with the old and new value.
    [reason] = plan_of(chain(tmp_path, text_b="B")).stage("b").reasons
    assert (reason.code, reason.detail) == (
        "params-changed",
        {"key": "text", "old": "b", "new": "B"},
    )
    # A source file changed: a reruns, and says which file.
    (tmp_path / "source.txt").write_text("hello, world")
    touch_later(tmp_path / "source.txt")
    plan = plan_of(graph)
    assert (
        codes(plan, "a") == ["source-changed"]
        and plan.stage("a").reasons[0].detail["path"] == "source.txt"
    )
    build(graph)
    # An upstream produced new bytes: b reruns because of a's output.
    graph_b = chain(tmp_path, text_b="x")
    build(graph_b)
    plan = plan_of(chain(tmp_path, text_b="x"))
    assert plan.stage("c").status == "up-to-date"
    lock = json.loads((tmp_path / "manifests" / "fake.lock").read_text())
    store = Store(tmp_path / "build" / "store")
    store.drop(lock["stages"]["c"]["lot"])
    lock["stages"]["c"].update(
        lot="d" * 64, inputs={"up": "0" * 64}
    )  # as if b had given other bytes when the lock was written
    assert codes(plan_of(graph_b, lock), "c") == ["upstream-changed"]


def test_the_lock_having_the_lot_means_the_store_lost_it(tmp_path: Path) -> None:
    graph = chain(tmp_path)
    build(graph)
    lock = read_lock(tmp_path / "manifests" / "fake.lock")
    Store(tmp_path / "build" / "store").drop(lock["stages"]["a"]["lot"])  # type: ignore[index]
    assert codes(plan_of(graph), "a") == ["missing-from-store"]


def test_a_lock_edited_by_hand_says_only_that_the_lot_differs(tmp_path: Path) -> None:
    graph = chain(tmp_path)
    build(graph)
    lock = read_lock(tmp_path / "manifests" / "fake.lock")
    assert lock is not None
    Store(tmp_path / "build" / "store").drop(lock["stages"]["a"]["lot"])
    lock["stages"]["a"]["lot"] = "f" * 64
    assert codes(plan_of(graph, lock), "a") == ["lot-differs"]


def test_a_lock_of_an_older_format_is_named_once(tmp_path: Path) -> None:
    graph = chain(tmp_path)
    build(graph)
    lock = read_lock(tmp_path / "manifests" / "fake.lock")
    assert lock is not None
    Store(tmp_path / "build" / "store").drop(lock["stages"]["a"]["lot"])
    lock["format"] = (
        LOCK_FORMAT - 1
    )  # an older opensem recorded params another way: one line says so, not one per key
    lock["stages"]["a"].update(lot="e" * 64, params={"old_name": 1, "other": 2, "third": 3})
    [reason] = plan_of(graph, lock).stage("a").reasons
    assert reason.code == "params-changed" and f"lock format {LOCK_FORMAT - 1}" in reason.text


def test_forced_failed_and_blocked(tmp_path: Path) -> None:
    graph = chain(tmp_path)
    build(graph)
    plan = plan_of(graph, force=frozenset({"b"}))
    assert (
        codes(plan, "b") == ["forced"] and plan.stage("c").status == "up-to-date"
    )  # a forced stage's old output still feeds c
    store = Store(tmp_path / "build" / "store")
    lot_b = plan.stage("b").lot
    assert lot_b is not None
    store.drop(lot_b)
    store.record_failure(lot_b, {"error": "StageError", "message": "b broke", "blocks": False})
    plan = plan_of(graph)
    assert (
        codes(plan, "b")[0] == "failed"
        and plan.stage("b").reasons[0].text == "failed last time: b broke"
    )
    assert codes(plan, "c") == ["waits-for"]
    store.record_failure(lot_b, {"error": "GateFailed", "message": "held", "blocks": True})
    plan = plan_of(graph)
    assert codes(plan, "b")[0] == "blocked" and codes(plan, "c") == ["blocked"]
    assert plan.stage("c").reasons[0].text == "waits for b (blocked by a failed quality gate)"


def test_every_code_is_documented_and_exercised_above() -> None:
    source = Path(__file__).read_text()
    assert all(f'"{code}"' in source for code in REASON_CODES)
