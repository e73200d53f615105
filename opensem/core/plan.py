"""Lot numbers and staleness: which stages are up to date, and why the others are not.

A stage's lot needs the output digest of every upstream stage, so lots are resolved in graph
order; a stage whose upstream is stale has no lot yet ("waits for ..."). Planning reads digests
and store metadata only; it never runs a stage. Every reason carries a stable code beside its
text (as doit's reasons do), so tools can act on `opensem plan --json` without parsing prose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from opensem.core.digests import DigestCache
from opensem.core.graph import SourceInput, StageGraph, StageNode
from opensem.core.lots import LOCK_FORMAT, changed_params, lot_number
from opensem.core.store import Store

Status = Literal["up-to-date", "stale"]
# Every code a reason can carry; the order is the order a plan names them in.
REASON_CODES = (
    "failed",  # the last attempt at this lot failed
    "blocked",  # a quality gate held this lot (or an upstream one) back
    "waits-for",  # an upstream stage is stale, so this lot is not known yet
    "forced",  # --force
    "not-built",  # the lock has no entry for the stage
    "missing-from-store",  # the lock has this very lot, the store does not
    "version-changed",  # the stage's code version moved
    "params-changed",  # a setting that enters the lot changed
    "source-changed",  # a source file or folder changed
    "upstream-changed",  # an upstream stage produced different bytes
    "lot-differs",  # none of the above explains it (the lock was edited by hand)
)


@dataclass(frozen=True)
class Reason:
    """Why a stage must run: a stable code, a sentence, and the details behind it."""

    code: str
    text: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in REASON_CODES:
            raise ValueError(f"unknown reason code {self.code!r}")

    def __str__(self) -> str:
        return self.text

    def as_json(self) -> dict[str, Any]:
        """The reason as JSON: its code, its text and its details."""
        return {"code": self.code, "text": self.text, **self.detail}


@dataclass
class StagePlan:
    name: str
    kind: str
    lot: str | None
    status: Status
    reasons: list[Reason] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    output: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The stage's plan as JSON."""
        return {
            "name": self.name,
            "kind": self.kind,
            "lot": self.lot,
            "status": self.status,
            "reasons": [r.as_json() for r in self.reasons],
        }


@dataclass
class Plan:
    graph: StageGraph
    stages: list[StagePlan]

    def stage(self, name: str) -> StagePlan:
        """The plan of the stage called name."""
        return next(s for s in self.stages if s.name == name)

    @property
    def stale(self) -> list[StagePlan]:
        """The stages that will run."""
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
        """Remember a built stage's output digest: later lots are computed from it."""
        self.outputs[name] = digest


def make_plan(
    graph: StageGraph,
    store: Store,
    digests: DigestCache,
    lock: dict[str, Any] | None,
    force: frozenset[str] = frozenset(),
) -> Plan:
    """Every stage of the graph, up to date or stale with the reasons."""
    resolver = Resolver(graph, digests)
    locked = (lock or {}).get("stages", {})
    lock_format = (lock or {}).get("format", LOCK_FORMAT)
    stages: list[StagePlan] = []
    blocked: set[str] = set()  # stages a failed quality gate holds back
    for node in graph.nodes:
        lot = resolver.resolve(node)
        if lot is None:
            waiting = list(
                dict.fromkeys(up for up in node.upstream() if up not in resolver.outputs)
            )  # two slots may wait on one stage
            held = bool(blocked & set(waiting))
            if held:
                blocked.add(node.name)
            text = f"waits for {', '.join(waiting)} ({'blocked by a failed quality gate' if held else 'stale'})"
            stages.append(
                StagePlan(
                    node.name,
                    node.kind,
                    None,
                    "stale",
                    [Reason("blocked" if held else "waits-for", text, {"stages": waiting})],
                )
            )
            continue
        inputs = resolver.input_digests[node.name]
        stored = store.output_digest(lot) if store.has(lot) else None
        if stored is not None and node.name not in force:
            resolver.record_output(node.name, stored)
            stages.append(StagePlan(node.name, node.kind, lot, "up-to-date", [], inputs, stored))
            continue
        forced = [Reason("forced", "forced with --force")] if node.name in force else []
        reasons = forced or stale_reasons(node, lot, inputs, locked.get(node.name), lock_format)
        failure = store.failure(lot) if node.name not in force else None
        if failure is not None:  # the last build stopped here; say so first
            held = bool(failure.get("blocks"))
            code, prefix = ("blocked", "blocked") if held else ("failed", "failed last time")
            reasons.insert(
                0,
                Reason(
                    code, f"{prefix}: {failure.get('message', '')}", {"error": failure.get("error")}
                ),
            )
            if held:
                blocked.add(node.name)
        if stored is not None:
            resolver.record_output(node.name, stored)  # forced: downstream may still be a store hit
        stages.append(StagePlan(node.name, node.kind, lot, "stale", reasons, inputs))
    return Plan(graph, stages)


def stale_reasons(
    node: StageNode,
    lot: str,
    inputs: dict[str, str],
    locked: dict[str, Any] | None,
    lock_format: int = LOCK_FORMAT,
) -> list[Reason]:
    """Why a stage whose lot is not in the store must run, compared with the lock (written in lock_format)."""
    if locked is None:
        return [Reason("not-built", "not built yet (no entry in the lock)")]
    if locked.get("lot") == lot:
        return [Reason("missing-from-store", "missing from the store (the lock has this lot)")]
    reasons: list[Reason] = []
    if locked.get("version") != node.version:
        old = locked.get("version")
        reasons.append(
            Reason(
                "version-changed",
                f"stage code changed (version {old} -> {node.version})",
                {"old": old, "new": node.version},
            )
        )
    if lock_format != LOCK_FORMAT and locked.get("params") != node.params:
        text = (
            f"params: the lock was written by another opensem (lock format {lock_format}, now "
            f"{LOCK_FORMAT}), which recorded them differently"
        )
        reasons.append(Reason("params-changed", text, {"lock_format": lock_format}))
    for key, old, new in (
        changed_params(locked.get("params", {}), node.params) if lock_format == LOCK_FORMAT else ()
    ):
        reasons.append(
            Reason(
                "params-changed",
                f"params changed: {key} {_brief(old)} -> {_brief(new)}",
                {"key": key, "old": old, "new": new},
            )
        )
    old_inputs = locked.get("inputs", {})
    for slot, digest in sorted(inputs.items()):
        if old_inputs.get(slot) != digest:
            origin = node.inputs[slot]
            before = str(old_inputs.get(slot))[:12]
            detail = {"slot": slot, "old": old_inputs.get(slot), "new": digest}
            if isinstance(origin, SourceInput):
                reasons.append(
                    Reason(
                        "source-changed",
                        f"input {slot}: {origin.path} changed ({before} -> {digest[:12]})",
                        {**detail, "path": origin.path},
                    )
                )
            else:
                reasons.append(
                    Reason(
                        "upstream-changed",
                        f"input {slot}: new output of {origin.stage} ({before} -> {digest[:12]})",
                        {**detail, "stage": origin.stage},
                    )
                )
    return reasons or [Reason("lot-differs", "lot differs from the lock")]


def _brief(value: Any, limit: int = 48) -> str:
    """A param value short enough for a plan line (a rubric or a source list is not)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
