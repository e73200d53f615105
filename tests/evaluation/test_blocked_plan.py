"""A failed gate is remembered beside the store, so `opensem plan` can say why the build is blocked."""

from __future__ import annotations

from pathlib import Path

from opensem.build.graph import SourceInput, StageGraph, StageNode, UpstreamInput
from opensem.build.digests import DigestCache
from opensem.build.plan import make_plan
from opensem.build.store import Store


def graph(root: Path) -> StageGraph:
    (root / "eval").mkdir()
    (root / "eval" / "report.json").write_text("{}")
    nodes = [
        StageNode(name="gate", kind="gate", params={"gates": []}, inputs={"report": SourceInput(path="eval")}),
        StageNode(name="publish", kind="publish", params={}, inputs={"gate": UpstreamInput(stage="gate")}),
    ]
    return StageGraph(job_id="t", manifest_path=root / "t.yaml", project_root=root, nodes=nodes)


def test_plan_reports_a_failed_gate_and_what_it_holds_back(tmp_path: Path) -> None:
    g, store = graph(tmp_path), Store(tmp_path / "build" / "store")
    plan = make_plan(g, store, DigestCache(None), None)
    lot = str(plan.stage("gate").lot)
    assert plan.stage("gate").reasons == ["not built yet (no entry in the lock)"]
    assert plan.stage("publish").reasons == ["waits for gate (stale)"]

    store.record_failure(lot, {"stage": "gate", "error": "GatesFailed", "message": "quality gate failed: test.loss 2.0 > 1", "gate": True})
    plan = make_plan(g, store, DigestCache(None), None)
    assert plan.stage("gate").reasons == ["blocked: quality gate failed: test.loss 2.0 > 1", "not built yet (no entry in the lock)"]
    assert plan.stage("publish").reasons == ["waits for gate (blocked by a failed quality gate)"]
    assert not store.has(lot)  # a failure is never a result

    store.record_failure(lot, {"stage": "gate", "error": "StageError", "message": "cannot read the report", "gate": False})
    assert make_plan(g, store, DigestCache(None), None).stage("gate").reasons[0] == "failed last time: cannot read the report"
    assert make_plan(g, store, DigestCache(None), None, force=frozenset({"gate"})).stage("gate").reasons == ["forced with --force"]
    store.clear_failure(lot)
    assert store.failure(lot) is None and make_plan(g, store, DigestCache(None), None).stage("gate").reasons == ["not built yet (no entry in the lock)"]
