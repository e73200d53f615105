"""`opensem verify`: the CI check that manifest, source data, lock, store and registry agree.

Nothing runs. Each stage's lot is recomputed from the manifest's params, the source files as they
are now and the upstream output digests recorded in the lock; then the lock entry must match
itself, and the store entry (when there is one) must hold exactly the recorded bytes. A missing
store is reported, not fatal. What lies beyond the store (a published tag in a registry) is
checked by the domain, which adds its findings to the same report (opensem.release.registry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opensem.core.digests import DigestCache, digest_tree
from opensem.core.graph import SourceInput, StageGraph
from opensem.core.lots import changed_params, lot_number
from opensem.core.store import Store


@dataclass
class VerifyReport:
    checked: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify(
    graph: StageGraph, lock: dict[str, Any] | None, store: Store, digests: DigestCache
) -> VerifyReport:
    """Recompute every lot from the manifest, the sources and the lock, and check the store."""
    report = VerifyReport()
    if lock is None:
        report.mismatches.append(
            "no lock file: build once with `opensem build` and commit the lock"
        )
        return report
    locked: dict[str, Any] = lock.get("stages", {})
    for extra in sorted(set(locked) - set(graph.names)):
        report.mismatches.append(f"{extra}: in the lock but not in the manifest's stage graph")
    for node in graph.nodes:
        entry = locked.get(node.name)
        if entry is None:
            report.mismatches.append(
                f"{node.name}: not in the lock (never built, or the build stopped before it)"
            )
            continue
        inputs: dict[str, str] = {}
        for slot, source in node.inputs.items():
            if isinstance(source, SourceInput):
                inputs[slot] = digests.path(graph.project_root / source.path)
            else:
                inputs[slot] = str(locked.get(source.stage, {}).get("output"))
        problems = _lock_problems(
            node.name, node.kind, node.version, node.params, inputs, entry, graph
        )
        if not problems:
            problems = _store_problems(node.name, entry, store, report)
        report.mismatches.extend(problems)
        if not problems:
            report.checked.append(node.name)
    return report


def _lock_problems(
    name: str,
    kind: str,
    version: str,
    params: dict[str, Any],
    inputs: dict[str, str],
    entry: dict[str, Any],
    graph: StageGraph,
) -> list[str]:
    recorded = lot_number(
        kind, str(entry.get("version")), entry.get("params", {}), entry.get("inputs", {})
    )
    if recorded != entry.get("lot"):
        return [
            f"{name}: the lock's lot does not match its own params and inputs (was the lock edited by hand?)"
        ]
    if version != entry.get("version"):
        return [
            f"{name}: stage code is version {version}, the lock was built with {entry.get('version')}"
        ]
    if params != entry.get("params"):
        keys = [key for key, _, _ in changed_params(entry.get("params", {}), params)]
        return [f"{name}: manifest params differ from the lock ({', '.join(keys)})"]
    problems = []
    for slot, digest in sorted(inputs.items()):
        if entry.get("inputs", {}).get(slot) != digest:
            source = graph.node(name).inputs[slot]
            what = (
                f"source {source.path} changed since the lock was written"
                if isinstance(source, SourceInput)
                else f"output of {source.stage} in the lock differs"
            )
            problems.append(f"{name}: input {slot}: {what}")
    if not problems and lot_number(kind, version, params, inputs) != entry.get("lot"):
        problems.append(f"{name}: recomputed lot differs from the lock")
    return problems


def _store_problems(
    name: str, entry: dict[str, Any], store: Store, report: VerifyReport
) -> list[str]:
    lot = str(entry.get("lot"))
    if not store.has(lot):
        report.notes.append(f"{name}: lot {lot[:12]} is not in the local store (not checked)")
        return []
    meta_output = store.output_digest(lot)
    if meta_output != entry.get("output"):
        return [
            f"{name}: store entry {lot[:12]} records output {str(meta_output)[:12]}, the lock says "
            f"{str(entry.get('output'))[:12]}"
        ]
    actual = digest_tree(store.out_dir(lot))
    if actual != meta_output:
        return [
            f"{name}: stored output of lot {lot[:12]} was tampered with (digest {actual[:12]}, expected "
            f"{str(meta_output)[:12]})"
        ]
    return []
