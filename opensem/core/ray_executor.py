"""Stages as tasks on a Ray cluster, connected by the shared stage cache (`executor: ray`).

This process stays the planner: doit decides what is stale, lot locks keep two builds off one lot,
and the lock file is written here. A stale stage becomes one Ray task that asks for what the stage
declares (a heavy stage: a GPU where the cluster has them and most of a machine's memory). The
task runs on a worker with the project's files (Ray's working_dir, without build/), takes its
upstream entries from the shared cache into that worker's own store, makes the entry exactly as a
local build would (`build_entry`) and uploads it; this process then pulls it like any cache hit.
Stages that touch a registry (`local`) run here. Scheduling, placement and worker processes are
Ray's; opensem adds no protocol of its own.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensem.core.digests import DigestCache
from opensem.core.events import BuildEvent
from opensem.core.execute import Built, LocalExecutor, StageJob, build_entry
from opensem.core.lotlock import lot_lock
from opensem.core.remote import RemoteCache
from opensem.core.stage import StageResult, StageRunner
from opensem.core.store import Store
from opensem.errors import StageError, UsageError

HEAVY_MEMORY_SHARE = 0.6  # of the smallest machine's memory: two heavy stages never share a machine
SHIPPED_WITHOUT = [
    "build/",
    ".git/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
]  # never part of a stage's inputs
_CONNECT = threading.Lock()
_SHIPPED: list[Path] = []  # the project this process's Ray job ships to its workers (one per job)


def worker_root() -> Path:
    """Where a worker machine keeps its store, checkpoints and caches between tasks."""
    return Path(
        os.environ.get("OPENSEM_RAY_WORKDIR") or Path(tempfile.gettempdir()) / "opensem-ray"
    )


def connect(
    project_root: Path, said: Callable[[str], None] = lambda text: None
) -> dict[str, float]:
    """Join the cluster at RAY_ADDRESS (or start one on this machine) as a job whose workers get a
    copy of the project (Ray ships a job's working_dir once); the cluster's resources."""
    import ray

    with _CONNECT:
        if _SHIPPED and _SHIPPED[0] != project_root:
            raise UsageError(
                f"one build sends one project to Ray; this one has {_SHIPPED[0]} and {project_root}",
                hint="build the manifests of each project in a build of their own",
            )
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS") or None
            runtime_env = {"working_dir": str(project_root), "excludes": SHIPPED_WITHOUT}
            try:
                ray.init(
                    address=address,
                    runtime_env=runtime_env,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
                _SHIPPED.append(project_root)
            except (ConnectionError, RuntimeError) as exc:
                raise UsageError(
                    f"cannot reach the Ray cluster at {address}: {exc}",
                    hint="start it (`ray start --head`), or unset RAY_ADDRESS to start one on this machine",
                ) from None
            found = ray.cluster_resources()
            said(
                f"ray: {address or 'a new local cluster'}, {found.get('CPU', 0):g} CPUs, {found.get('GPU', 0):g} GPUs"
            )
    return dict(ray.cluster_resources())


def task_options(
    heavy: bool, cluster: dict[str, float], machine_memory: list[float]
) -> dict[str, Any]:
    """What a stage's task asks Ray for: one CPU; a heavy stage also a GPU where the cluster has
    any, and most of the smallest machine's memory (so no two heavy stages share a machine)."""
    options: dict[str, Any] = {"num_cpus": 1}
    if heavy:
        if cluster.get("GPU", 0) >= 1:
            options["num_gpus"] = 1
        if machine_memory:
            options["memory"] = int(HEAVY_MEMORY_SHARE * min(machine_memory))
    return options


@dataclass
class RayExecutor:
    """Makes entries on a Ray cluster; the shared cache carries inputs there and results back."""

    remote: RemoteCache
    local: LocalExecutor  # for stages that must run here, and the store results come back to

    def build(self, job: StageJob) -> Built:
        """Run the stage on the cluster, or here when it must be local, and bring its entry back."""
        if job.node.local:
            return self.local.build(job)
        import ray
        from ray.exceptions import RayTaskError

        cluster = connect(
            self.local.project_root,
            lambda text: self.local.reporter.report(
                BuildEvent("connected", job.job_id, detail=text)
            ),
        )
        memory = [
            float(n["Resources"].get("memory", 0))
            for n in ray.nodes()
            if n.get("Alive") and n["Resources"].get("memory")
        ]
        # Built here earlier and never shared: the worker reads it from the cache
        for lot in job.upstream_lots.values():
            self.remote.push(lot, self.local.store)
        task = _worker_task().options(**task_options(job.node.heavy, cluster, memory))
        try:
            built = ray.get(
                task.remote(job, self.local.runner, self.remote.url, self.remote.location)
            )
        except RayTaskError as exc:  # the stage's own error, as if it had run here
            raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
        if job.replace:
            self.local.store.drop(job.lot)
        fetched = self.remote.fetch(job.lot, self.local.store, self.local.digests)
        if fetched.status != "hit" and not self.local.store.has(job.lot):
            raise StageError(
                f"stage {job.node.name}: built on the cluster, but its entry cannot be taken from the cache "
                f"({fetched.status} {fetched.reason})",
                hint=f"check that this machine can read {self.remote.url}; the next build takes it from there",
            )
        return built


@functools.lru_cache(maxsize=1)
def _worker_task() -> Any:
    """run_on_worker as a Ray remote function, made once per process (Ray exports it on first use)."""
    import ray

    return ray.remote(max_retries=0)(run_on_worker)


def run_on_worker(job: StageJob, runner: StageRunner, cache_url: str, cache_location: str) -> Built:
    """The Ray task: upstream entries from the cache, the stage run into this worker's store, the
    entry uploaded. Its working directory is the project's copy that Ray shipped."""
    root = worker_root()
    store, digests = Store(root / "store"), DigestCache(None)
    remote = RemoteCache(cache_url, "read-write", Path.cwd(), location=cache_location)
    for slot, lot in job.upstream_lots.items():
        with lot_lock(
            store.root / ".locks",
            lot,
            f"{job.job_id}:{job.node.name} (pulling {slot})",
            lambda holder: None,
        ):
            if not store.has(lot) and remote.fetch(lot, store, digests).status != "hit":
                raise StageError(
                    f"stage {job.node.name}: its input {slot} (lot {lot[:12]}) is not in the cache at {cache_url}",
                    hint="a read-write cache must hold every upstream entry; build again to upload it",
                )
    with lot_lock(
        store.root / ".locks", job.lot, f"{job.job_id}:{job.node.name}", lambda holder: None
    ):
        store.discard_staging(job.lot)
        if store.has(job.lot) and not job.replace:
            meta = store.meta(job.lot)
            built = Built(
                str(meta["output"]),
                float(meta.get("seconds", 0.0)),
                StageResult(meta.get("summary", ""), meta.get("metrics", {}), meta.get("lock", {})),
            )
        else:
            built = build_entry(store, digests, runner, job, Path.cwd(), root)
        remote.push(job.lot, store, replace=job.replace)
    return built
