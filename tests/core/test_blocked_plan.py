"""A failed gate is remembered beside the store, so `opensem plan` can say why the build is blocked."""

from __future__ import annotations

from pathlib import Path

from opensem.core.digests import DigestCache
from opensem.core.graph import SourceInput, StageGraph, StageNode, UpstreamInput
from opensem.core.plan import Plan, make_plan
from opensem.core.store import Store


def graph(root: Path) -> StageGraph:
    (root / "eval").mkdir()
    (root / "eval" / "report.json").write_text("{}")
    nodes = [
        StageNode(
            name="gate",
            kind="gate",
            version="1",
            params={"gates": []},
            inputs={"report": SourceInput(path="eval")},
        ),
        StageNode(
            name="publish",
            kind="publish",
            version="1",
            params={},
            inputs={"gate": UpstreamInput(stage="gate")},
        ),
    ]
    return StageGraph(job_id="t", manifest_path=root / "t.yaml", project_root=root, nodes=nodes)


def test_plan_reports_a_failed_gate_and_what_it_holds_back(tmp_path: Path) -> None:
    g, store = graph(tmp_path), Store(tmp_path / "build" / "store")
    plan = make_plan(g, store, DigestCache(None), None)
    lot = str(plan.stage("gate").lot)
    assert texts(plan, "gate") == ["not built yet (no entry in the lock)"]
    assert texts(plan, "publish") == ["waits for gate (stale)"]
    assert [r.code for r in plan.stage("publish").reasons] == ["waits-for"]

    store.record_failure(
        lot,
        {
            "stage": "gate",
            "error": "GatesFailed",
            "message": "quality gate failed: test.loss 2.0 > 1",
            "blocks": True,
        },
    )
    plan = make_plan(g, store, DigestCache(None), None)
    assert texts(plan, "gate") == [
        "blocked: quality gate failed: test.loss 2.0 > 1",
        "not built yet (no entry in the lock)",
    ]
    assert texts(plan, "publish") == ["waits for gate (blocked by a failed quality gate)"]
    assert [r.code for r in plan.stage("gate").reasons] == ["blocked", "not-built"] and plan.stage(
        "publish"
    ).reasons[0].code == "blocked"
    assert not store.has(lot)  # a failure is never a result

    store.record_failure(
        lot,
        {
            "stage": "gate",
            "error": "StageError",
            "message": "cannot read the report",
            "blocks": False,
        },
    )
    assert (
        texts(make_plan(g, store, DigestCache(None), None), "gate")[0]
        == "failed last time: cannot read the report"
    )
    assert texts(
        make_plan(g, store, DigestCache(None), None, force=frozenset({"gate"})), "gate"
    ) == ["forced with --force"]
    store.clear_failure(lot)
    assert store.failure(lot) is None and texts(
        make_plan(g, store, DigestCache(None), None), "gate"
    ) == ["not built yet (no entry in the lock)"]


def texts(plan: Plan, name: str) -> list[str]:
    return [reason.text for reason in plan.stage(name).reasons]
