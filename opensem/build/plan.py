"""Lot numbers and staleness: which stages are up to date, and why the others are not.

A stage's lot needs the output digest of every upstream stage, so lots are resolved in graph
order; a stage whose upstream is stale has no lot yet ("waits for ..."). Planning reads digests
and store metadata only; it never runs a stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from opensem.build.graph import SourceInput, StageGraph, StageNode
from opensem.build.digests import DigestCache, lot_number
from opensem.build.store import Store

Status = Literal["up-to-date", "stale"]


@dataclass
class StagePlan:
    name: str
    kind: str
    lot: str | None
    status: Status
    reasons: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    output: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "lot": self.lot, "status": self.status, "reasons": self.reasons}


@dataclass
class Plan:
    graph: StageGraph
    stages: list[StagePlan]

    def stage(self, name: str) -> StagePlan:
        return next(s for s in self.stages if s.name == name)

    @property
    def stale(self) -> list[StagePlan]:
        return [s for s in self.stages if s.status == "stale"]


class Resolver:
    """Resolves input digests and lots stage by stage, remembering upstream outputs."""

    def __init__(self, graph: StageGraph, digests: DigestCache) -> None:
        self.graph = graph
        self.digests = digests
        self.outputs: dict[str, str] = {}
        self.lots: dict[str, str] = {}
        self.input_digests: dict[str, dict[str, str]] = {}

    def resolve(self, node: StageNode) -> str | None:
        """The node's lot, or None while an upstream output is unknown."""
        inputs: dict[str, str] = {}
        for slot, source in node.inputs.items():
            if isinstance(source, SourceInput):
                inputs[slot] = self.digests.path(self.graph.project_root / source.path)
            elif source.stage in self.outputs:
                inputs[slot] = self.outputs[source.stage]
            else:
                return None
        self.input_digests[node.name] = inputs
        self.lots[node.name] = lot_number(node.kind, node.version, node.params, inputs)
        return self.lots[node.name]

    def record_output(self, name: str, digest: str) -> None:
        self.outputs[name] = digest


def make_plan(graph: StageGraph, store: Store, digests: DigestCache, lock: dict[str, Any] | None, force: frozenset[str] = frozenset()) -> Plan:
    """Every stage of the graph, up to date or stale with the reasons."""
    resolver = Resolver(graph, digests)
    locked = (lock or {}).get("stages", {})
    stages: list[StagePlan] = []
    blocked: set[str] = set()  # stages a failed quality gate holds back
    for node in graph.nodes:
        lot = resolver.resolve(node)
        if lot is None:
            waiting = [up for up in node.upstream() if up not in resolver.outputs]
            held = bool(blocked & set(waiting))
            if held:
                blocked.add(node.name)
            state = "blocked by a failed quality gate" if held else "stale"
            stages.append(StagePlan(node.name, node.kind, None, "stale", [f"waits for {', '.join(waiting)} ({state})"]))
            continue
        inputs = resolver.input_digests[node.name]
        stored = store.output_digest(lot) if store.has(lot) else None
        if stored is not None and node.name not in force:
            resolver.record_output(node.name, stored)
            stages.append(StagePlan(node.name, node.kind, lot, "up-to-date", [], inputs, stored))
            continue
        reasons = ["forced with --force"] if node.name in force else stale_reasons(node, lot, inputs, locked.get(node.name), graph)
        failure = store.failure(lot) if node.name not in force else None
        if failure is not None:  # the last build stopped here; say so first
            reasons.insert(0, f"{'blocked' if failure.get('gate') else 'failed last time'}: {failure.get('message', '')}")
            if failure.get("gate"):
                blocked.add(node.name)
        if stored is not None:
            resolver.record_output(node.name, stored)  # forced: downstream may still be a store hit
        stages.append(StagePlan(node.name, node.kind, lot, "stale", reasons, inputs))
    return Plan(graph, stages)


def stale_reasons(node: StageNode, lot: str, inputs: dict[str, str], locked: dict[str, Any] | None, graph: StageGraph) -> list[str]:
    """Why a stage whose lot is not in the store must run, compared with the lock."""
    if locked is None:
        return ["not built yet (no entry in the lock)"]
    if locked.get("lot") == lot:
        return ["missing from the store (the lock has this lot)"]
    reasons: list[str] = []
    if locked.get("version") != node.version:
        reasons.append(f"stage code changed (version {locked.get('version')} -> {node.version})")
    old_params = locked.get("params", {})
    changed = sorted(k for k in set(old_params) | set(node.params) if old_params.get(k) != node.params.get(k))
    for key in changed:
        reasons.append(f"params changed: {key} {_brief(old_params.get(key))} -> {_brief(node.params.get(key))}")
    old_inputs = locked.get("inputs", {})
    for slot, digest in sorted(inputs.items()):
        if old_inputs.get(slot) != digest:
            origin = node.inputs[slot]
            what = f"{origin.path} changed" if isinstance(origin, SourceInput) else f"new output of {origin.stage}"
            reasons.append(f"input {slot}: {what} ({str(old_inputs.get(slot))[:12]} -> {digest[:12]})")
    return reasons or ["lot differs from the lock"]


def _brief(value: Any, limit: int = 48) -> str:
    """A param value short enough for a plan line (a rubric or a source list is not)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."
