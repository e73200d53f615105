"""What the pages show of an expert, read from the same project folder the CLI uses.

Nothing here is kept between requests: each page plans the manifest (as `opensem plan` does),
lists the registry's releases (as `opensem pull --list` does) and the documents on disk, so the
browser and the terminal agree at every moment.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opensem.core.events import CollectingReporter
from opensem.errors import OpensemError
from opensem.ui.job_table import ACTIVE, Job
from opensem.ui.jobs import JobQueue

HEADLINE_METRICS = ("golden.token_f1", "golden.perplexity", "test.perplexity")


@dataclass
class StageRow:
    """A stage of the plan: its name, status and why it is stale."""

    name: str
    status: str
    reasons: list[str]


@dataclass
class ReleaseRow:
    """A published release: its tag, lot, when, and its report's metrics."""

    tag: str
    lot: str
    published: float | None
    headline: str
    metrics: dict[str, dict[str, Any]]
    files: list[str]


@dataclass
class ExpertView:
    """An expert's state as the pages show it."""

    name: str
    manifest: str
    description: str
    state: str  # up to date, stale, never built, invalid, queued, building, failed
    problem: str = ""
    stages: list[StageRow] = field(default_factory=list)
    releases: list[ReleaseRow] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    documents: list[tuple[str, int]] = field(default_factory=list)

    @property
    def stale(self) -> list[StageRow]:
        """The stages a build would run."""
        return [row for row in self.stages if row.status != "up-to-date"]

    def headline(self) -> dict[str, dict[str, Any]]:
        """The latest release's headline metrics."""
        if not self.releases:
            return {}
        metrics = self.releases[0].metrics
        return {name: metrics[name] for name in HEADLINE_METRICS if name in metrics}


def manifests(root: Path) -> list[Path]:
    """The project's manifests, by name."""
    return sorted((root / "manifests").glob("*.yaml"))


def manifest_named(root: Path, name: str) -> Path | None:
    """The manifest of an expert, by its job_id or its file name (names never climb out of
    manifests/: they are only compared with what is there)."""
    found = manifests(root)
    by_file = next((path for path in found if path.stem == name), None)
    return by_file or next((p for p in found if manifest_yaml(p).get("job_id") == name), None)


def expert_view(root: Path, manifest: Path, jobs: JobQueue, *, plan: bool = True) -> ExpertView:
    """Plan, releases, documents and jobs of one manifest."""
    relative = manifest.relative_to(root).as_posix()
    raw = manifest_yaml(manifest)
    view = ExpertView(
        name=str(raw.get("job_id") or manifest.stem),
        manifest=relative,
        description=str(raw.get("description") or ""),
        state="never built",
        jobs=jobs.recent(relative, limit=20),
    )
    view.documents = _documents(root, view.name)
    try:
        if plan:
            view.stages = _plan(manifest)
        view.releases = releases(root, raw)
    except OpensemError as error:
        view.state, view.problem = "invalid", error.render()
        return view
    active = next((job for job in view.jobs if job.state in ACTIVE), None)
    if active is not None:
        view.state = "building" if active.state == "running" else "queued"
    elif view.jobs and view.jobs[0].state == "failed":
        view.state = "failed"
    elif view.stages and not view.stale:
        view.state = "up to date"
    elif any(row.status != "up-to-date" for row in view.stages) and (view.releases or _built(view)):
        view.state = "stale"
    return view


def _built(view: ExpertView) -> bool:
    return any(row.status == "up-to-date" for row in view.stages)


def _plan(manifest: Path) -> list[StageRow]:
    from opensem.project import load_graph, open_session

    session = open_session(load_graph(manifest), reporter=CollectingReporter())
    result = session.plan(session.force)
    session.digests.save()
    return [StageRow(s.name, s.status, [str(r) for r in s.reasons]) for s in result.stages]


def releases(root: Path, raw: dict[str, Any]) -> list[ReleaseRow]:
    """The manifest's published releases, newest first."""
    from opensem.release.registry import open_registry, read_index

    target = raw.get("publish_target") or {}
    if not target.get("registry") or not raw.get("job_id"):
        return []
    fs, registry = open_registry(str(target["registry"]), root)
    job = str(raw["job_id"])
    rows = []
    for tag, entry in read_index(fs, registry, job)["tags"].items():
        folder = posixpath.join(registry, job, tag)
        report = _json(fs, posixpath.join(folder, "report.json"))
        listing = _json(fs, posixpath.join(folder, "files.json"))
        rows.append(
            ReleaseRow(
                tag=tag,
                lot=str(entry.get("lot", "")),
                published=_modified(fs, posixpath.join(folder, "files.json")),
                headline=str(report.get("headline", "")),
                metrics=dict(report.get("metrics", {})),
                files=sorted(listing.get("files", {})),
            )
        )
    return sorted(rows, key=lambda row: (row.published or 0, row.tag), reverse=True)


def _documents(root: Path, name: str) -> list[tuple[str, int]]:
    raw = root / "data" / name / "raw"
    if not raw.is_dir():
        return []
    return [
        (path.relative_to(raw).as_posix(), path.stat().st_size)
        for path in sorted(raw.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    ]


def manifest_yaml(path: Path) -> dict[str, Any]:
    """A manifest file as plain YAML (for what the pages show; empty when it cannot be read)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _json(fs: Any, path: str) -> dict[str, Any]:
    try:
        loaded = json.loads(fs.cat_file(path))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _modified(fs: Any, path: str) -> float | None:
    try:
        info = fs.info(path)
    except OSError:
        return None
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
    return stamp.timestamp() if hasattr(stamp, "timestamp") else (float(stamp) if stamp else None)
