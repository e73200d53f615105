"""A fake stage kind for the build core's tests: no torch, no manifest, just files.

Kind "join" writes out/result.txt: its params' `text`, then each input's content (a source file's
bytes, or an upstream's result.txt), in slot order; `normalize: true` lowercases the sources, so an
edit that only changes case yields the same bytes (early cutoff). Kind "fail" raises a StageError,
kind "hold" raises a GateFailed (which blocks the build).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensem.core.digests import DigestCache
from opensem.core.engine import BuildSession
from opensem.core.graph import SourceInput, StageGraph, StageNode, UpstreamInput
from opensem.core.stage import StageContext, StageResult
from opensem.errors import GateFailed, StageError


@dataclass
class FakeRunner:
    runs: list[str] = field(default_factory=list)
    spans: dict[str, tuple[float, float]] = field(
        default_factory=dict
    )  # stage -> (start, end), monotonic

    def run(
        self, node: StageNode, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        started = time.monotonic()
        try:
            return self._run(node, inputs, out_dir)
        finally:
            self.spans[node.name] = (started, time.monotonic())

    def _run(self, node: StageNode, inputs: dict[str, Path], out_dir: Path) -> StageResult:
        self.runs.append(node.name)
        time.sleep(float(node.params.get("sleep", 0)))
        if node.kind == "fail":
            raise StageError(f"{node.name} broke", hint="it always does")
        if node.kind == "hold":
            raise GateFailed(f"{node.name} held the build back", hint="loosen it")
        parts = [str(node.params.get("text", ""))]
        for slot in sorted(inputs):
            path = inputs[slot]
            text = (path / "result.txt").read_text() if path.is_dir() else path.read_text()
            parts.append(text.lower() if node.params.get("normalize") else text)
        (out_dir / "result.txt").write_text("|".join(parts))
        return StageResult(
            summary=f"{node.name} joined {len(inputs)} inputs",
            metrics={"parts": len(parts)},
            lock=dict(node.params.get("lock", {})),
        )

    def library_versions(self) -> dict[str, str]:
        return {"fake": "1"}


def node(
    name: str,
    kind: str = "join",
    version: str = "1",
    inputs: dict[str, Any] | None = None,
    heavy: bool = False,
    **params: Any,
) -> StageNode:
    return StageNode(
        name=name, kind=kind, version=version, params=params, inputs=inputs or {}, heavy=heavy
    )


def chain(root: Path, *extra: StageNode, text_b: str = "b", version_b: str = "1") -> StageGraph:
    """source.txt -> a (normalizes case) -> b -> c, plus any extra nodes."""
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "manifests" / "fake.yaml").touch()
    if not (root / "source.txt").exists():
        (root / "source.txt").write_text("hello")
    nodes = [
        node("a", inputs={"src": SourceInput(path="source.txt")}, text="a", normalize=True),
        node("b", version=version_b, inputs={"up": UpstreamInput(stage="a")}, text=text_b),
        node(
            "c",
            inputs={"up": UpstreamInput(stage="b")},
            text="c",
            lock={"published": {"tag": "t1"}},
        ),
        *extra,
    ]
    return StageGraph(
        job_id="fake",
        manifest_path=root / "manifests" / "fake.yaml",
        project_root=root,
        nodes=nodes,
    )


def session(
    graph: StageGraph,
    runner: FakeRunner | None = None,
    force: frozenset[str] = frozenset(),
    remote: Any = None,
) -> BuildSession:
    from opensem.console import RichReporter  # the CLI's lines, which these tests read from stderr

    return BuildSession(
        graph,
        DigestCache(graph.project_root / "build" / "cache" / "digests.json"),
        runner or FakeRunner(),
        force,
        remote=remote,
        reporter=RichReporter(),
    )


def build(
    graph: StageGraph,
    runner: FakeRunner | None = None,
    force: frozenset[str] = frozenset(),
    remote: Any = None,
    jobs: int = 1,
) -> tuple[BuildSession, int]:
    """Run every stage through doit and write the lock, as `opensem build` does; (session, doit exit code)."""
    from opensem.core.doit_run import run_doit

    current = session(graph, runner, force, remote)
    code = run_doit([current], [graph.job_id], jobs)
    if code == 0 and current.error is None:
        current.write_lock()
    return current, code


def touch_later(path: Path) -> None:
    """Move a file's mtime forward so the digest cache sees an edit even within one clock tick."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
