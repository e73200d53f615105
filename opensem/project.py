"""A project's manifests as builds: where the CLI and dodo.py meet the build core.

The core (opensem.core) plans and runs graphs; the domain (opensem.stages) turns manifests into
graphs and runs stages. This module joins the two: it opens a build session for a manifest, and
yields the doit tasks of every manifest in <project>/manifests/ for plain `doit`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opensem.core.digests import DigestCache
from opensem.core.engine import BuildSession
from opensem.core.events import Reporter
from opensem.core.graph import StageGraph
from opensem.core.layout import Layout
from opensem.errors import Location, OpensemError, UsageError


def load_graph(manifest: Path) -> StageGraph:
    """The stage graph of a manifest: schema, paths and every stage's settings checked."""
    from opensem.manifest.loader import load_manifest
    from opensem.manifest.project_config import read_project_config
    from opensem.stages.wiring import build_graph

    loaded = load_manifest(manifest)
    return build_graph(loaded, read_project_config(loaded.project_root))


def open_session(
    graph: StageGraph,
    force: frozenset[str] = frozenset(),
    digests: DigestCache | None = None,
    reporter: Reporter | None = None,
) -> BuildSession:
    """A build session of a graph, with the project's digest cache and the stage runner; its events
    go to reporter (the CLI's lines when none is given)."""
    from opensem.console import RichReporter
    from opensem.core.remote import cache_from
    from opensem.stages.runner import PipelineRunner

    digests = digests or DigestCache(Layout(graph.project_root).digest_cache_file)
    return BuildSession(
        graph,
        digests,
        PipelineRunner(),
        force,
        remote=cache_from(graph.cache, graph.project_root, os.environ),
        reporter=reporter or RichReporter(),
    )


def choose_executor(session: BuildSession, executor: str | None) -> None:
    """Before a build runs stages: where they run, as `executor` (else the manifest, else the project) says."""
    if (executor or session.graph.executor) == "ray":
        session.executor = ray_executor(session)


def ray_executor(session: BuildSession) -> Any:
    """Stages as Ray tasks: the shared cache is what carries their inputs and results, so it must take uploads."""
    from opensem.core.ray_executor import RayExecutor

    if session.remote is None or not session.remote.writable:
        raise UsageError(
            f"{session.graph.job_id}: executor ray needs a read-write stage cache that the cluster's machines can "
            "reach",
            hint=(
                "set `cache: {url: s3://bucket/prefix, mode: read-write}` in the manifest or "
                "[tool.opensem], or OPENSEM_CACHE with OPENSEM_CACHE_MODE=read-write"
            ),
        )
    if importlib.util.find_spec("ray") is None:
        raise UsageError("executor ray needs the Ray library", hint="pip install 'opensem[ray]'")
    from opensem.core.execute import LocalExecutor

    assert isinstance(session.executor, LocalExecutor)  # the session made it
    return RayExecutor(session.remote, session.executor)


def project_tasks(project_root: Path) -> Iterator[dict[str, Any]]:
    """Stage tasks plus a lock-writing task for each manifest in <project>/manifests/.

    An invalid manifest is reported on stderr, with the same message as `opensem build`, and left
    out: the other manifests still list and build (`opensem validate` exits 2 on it).
    """
    digests = DigestCache(Layout(project_root).digest_cache_file)
    for manifest in sorted((project_root / "manifests").glob("*.y*ml")):
        try:
            session = open_session(load_graph(manifest), digests=digests)
            choose_executor(session, None)
        except OpensemError as exc:
            sys.stderr.write(
                f"!! {manifest.name} is invalid and left out of this doit run:\n{exc.render()}\n"
            )
            continue
        yield from session.tasks(with_lock_task=True)


def expert_from_manifest(
    manifest_path: Path,
    name: str | None = None,
    endpoint: str | None = None,
    replicas: list[str] | None = None,
    priority: int = 0,
) -> Any:
    """An expert entry from a manifest: description, `expert:` section, golden set and the published lot."""
    from opensem.core.layout import lock_path
    from opensem.core.lock import read_lock
    from opensem.data.corpus import DATASET_SUFFIXES
    from opensem.manifest.loader import load_manifest
    from opensem.routing.profile import ExpertProfile

    loaded = load_manifest(manifest_path)
    manifest = loaded.manifest
    published = (read_lock(lock_path(manifest_path)) or {}).get("published") or {}
    profile = manifest.expert or ExpertProfile()
    if not (profile.keywords or profile.examples or manifest.description):
        raise UsageError(
            "the manifest says nothing a router could recognise its queries by",
            Location(file=str(manifest_path), key="expert"),
            "add `expert: {domains: [...], keywords: [...], examples: [...]}` (or at least a description) to the "
            "manifest",
        )
    golden = (
        manifest.evaluation.golden
        if manifest.evaluation is not None and manifest.evaluation.golden
        else f"data/{manifest.job_id}/golden"
    )
    golden_path = loaded.project_root / golden
    questions = [
        str(loaded.project_root / source.path)
        for source in (manifest.data.sources if manifest.data else [])
        if Path(source.path).suffix.lower() in DATASET_SUFFIXES
        and (loaded.project_root / source.path).is_file()
    ]
    from opensem.routing.registry import Expert

    return Expert(
        name=name or manifest.job_id,
        model_path=str(manifest_path),
        description=manifest.description or "",
        endpoint=endpoint,
        replicas=replicas or [],
        priority=priority,
        golden=str(golden_path) if golden_path.exists() else None,
        questions=questions,
        job_id=manifest.job_id,
        lot=published.get("lot"),
        tag=published.get("tag"),
        **profile.model_dump(),
    )
