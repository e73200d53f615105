"""Making one store entry, and where that happens.

A stage's entry is made the same way wherever it runs: the stage writes into a staging folder of
a store, its output is digested, meta.json is written and the folder is renamed into place
(`build_entry`). The engine hands that work to an Executor: `LocalExecutor` makes it in this
process; `opensem.core.ray_executor` makes it on a Ray cluster and brings it back through the
shared stage cache. Either way the engine, in this process, plans and writes the lock.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opensem import __version__
from opensem.core.digests import DigestCache
from opensem.core.events import BuildEvent, LogReporter, Reporter
from opensem.core.files import discard
from opensem.core.graph import SourceInput, StageNode, UpstreamInput
from opensem.core.stage import (
    ProgressFactory,
    StageContext,
    StageResult,
    StageRunner,
    silent_progress,
)
from opensem.core.store import Store

HEAVY = threading.BoundedSemaphore(1)  # one heavy stage at a time in this process, whatever -j says


@dataclass(frozen=True)
class StageJob:
    """Everything needed to make one lot's entry, without the machine it is planned on."""

    node: StageNode
    lot: str
    job_id: str
    input_digests: dict[str, str]  # slot -> digest, as the lot was computed from them
    upstream_lots: dict[str, str]  # slot -> lot of the upstream entry it reads
    lineage: dict[str, dict[str, str]] = field(default_factory=dict)
    replace: bool = False  # --force: an entry already there gives way

    def paths(self, store: Store, project_root: Path) -> dict[str, Path]:
        """Where the stage reads each input on this machine: a store entry, or a project path."""
        found: dict[str, Path] = {}
        for slot, source in self.node.inputs.items():
            if isinstance(source, UpstreamInput):
                found[slot] = store.out_dir(self.upstream_lots[slot])
            elif isinstance(source, SourceInput):
                found[slot] = project_root / source.path
        return found


@dataclass
class Built:
    """What making an entry reported: its output digest, how long it took, the stage's result."""

    output: str
    seconds: float
    result: StageResult


class Executor(Protocol):
    """Makes a lot's entry in the local store (in this process, or elsewhere and brought back)."""

    def build(self, job: StageJob) -> Built:
        """Make job's entry and return what was built."""


def build_entry(
    store: Store,
    digests: DigestCache,
    runner: StageRunner,
    job: StageJob,
    project_root: Path,
    scratch: Path,
    progress: ProgressFactory = silent_progress,
    measure: Callable[[str, int, float], None] | None = None,
) -> Built:
    """Run job's stage into a staging folder of store and commit it; nothing half-made ever counts."""
    node = job.node
    tmp = store.begin(job.lot)
    started = time.time()
    try:
        ctx = StageContext(
            project_root=project_root,
            job_id=job.job_id,
            stage_name=node.name,
            lot=job.lot,
            work_dir=scratch / "work" / job.lot,
            cache_dir=scratch / "cache",
            log=logging.getLogger(f"opensem.{node.name}"),
            progress=progress,
            lineage=job.lineage,
            **({"measure": measure} if measure is not None else {}),
        )
        result = runner.run(node, job.paths(store, project_root), tmp / "out", ctx)
        output = digests.directory(tmp / "out")
        seconds = round(time.time() - started, 3)
        meta: dict[str, Any] = {
            "lot": job.lot,
            "job_id": job.job_id,
            "stage": node.name,
            "kind": node.kind,
            "version": node.version,
            "params": node.params,
            "inputs": job.input_digests,
            "output": output,
            "summary": result.summary,
            "metrics": result.metrics,
            "lock": result.lock,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": seconds,
            "versions": {
                "python": platform.python_version(),
                "opensem": __version__,
                **runner.library_versions(),
            },
        }
        if job.replace:
            store.drop(job.lot)
        final = store.commit(tmp, job.lot, meta)
        store.clear_failure(job.lot)
        digests.rekey(str(tmp), str(final))  # a rename keeps size, mtime and inode
    except BaseException:
        discard(tmp)
        raise
    discard(ctx.work_dir)
    return Built(output, seconds, result)


@dataclass
class LocalExecutor:
    """Makes entries in this process, into the project's own store."""

    store: Store
    digests: DigestCache
    runner: StageRunner
    project_root: Path
    scratch: Path  # build/: work/<lot> for checkpoints, cache/ for caches shared across lots
    reporter: Reporter = field(default_factory=LogReporter)  # where a stage's progress goes

    def build(self, job: StageJob) -> Built:
        """Run the stage here (heavy stages one at a time) and commit its entry."""
        progress = functools.partial(self.reporter.progress, job.job_id, job.node.name)

        def measure(name: str, step: int, value: float) -> None:
            self.reporter.report(
                BuildEvent(
                    "measured", job.job_id, job.node.name, detail=name, done=step, value=value
                )
            )

        with HEAVY if job.node.heavy else contextlib.nullcontext():
            return build_entry(
                self.store,
                self.digests,
                self.runner,
                job,
                self.project_root,
                self.scratch,
                progress,
                measure,
            )
