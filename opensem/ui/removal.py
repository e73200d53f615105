"""Deleting an expert, or some of its parts, with everything only they used.

The delete page first says what goes (files, bytes, releases, build results), then removes it.
A part is what the export page offers: the documents (the sources it learns from), the dataset
(generated pairs, edits), the feedback and the releases. Build results that hold a deleted part
(stage kinds declare `holds`) leave the lock, so the next build makes them again from what is
left, and every store entry no lock refers to any more is collected (`opensem gc`).
"""

from __future__ import annotations

import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from opensem.core.files import tally
from opensem.errors import OpensemError
from opensem.ui.archive import PARTS, document_paths, registry_folder


@dataclass
class Doomed:
    """What a delete removes."""

    paths: list[tuple[str, int, int]] = field(default_factory=list)  # (path, files, bytes)
    releases: list[str] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)  # build results forgotten: stage -> lot


def _local(root: Path, name: str, manifest: Path, parts: frozenset[str] | None) -> list[Path]:
    """The files and folders of this project a delete removes (parts None: the whole expert)."""
    from opensem.core.layout import lock_path

    data = root / "data" / name
    found: list[Path] = [manifest, lock_path(manifest), data] if parts is None else []
    parts = parts or frozenset()
    if "documents" in parts:
        found += document_paths(root, name, manifest)
    if "dataset" in parts:
        found.append(data / "edits")
    if "feedback" in parts:
        found.append(data / "feedback")
    return [path for path in found if path.exists()]


def _held(manifest: Path, parts: frozenset[str] | None) -> dict[str, str]:
    """{stage: lot} of the lock's build results that hold one of the parts."""
    from opensem.core.layout import lock_path
    from opensem.core.lock import read_lock
    from opensem.stages import get_stage

    if not parts:
        return {}
    try:
        lock = read_lock(lock_path(manifest)) or {}
    except OpensemError:
        return {}
    held = {}
    for stage, entry in (lock.get("stages") or {}).items():
        try:
            kind = get_stage(str(entry.get("kind")))
        except OpensemError:
            continue
        if getattr(kind, "holds", None) in parts and entry.get("lot"):
            held[stage] = str(entry["lot"])
    return held


def doomed(root: Path, name: str, manifest: Path, parts: frozenset[str] | None = None) -> Doomed:
    """What deleting the expert (parts None) or the named parts of it would remove."""
    found = Doomed()
    for path in _local(root, name, manifest, parts):
        found.paths.append((path.relative_to(root).as_posix(), *tally(path)))
    if parts is None or "releases" in parts:
        registry = registry_folder(root, manifest)
        if registry is not None and registry[0].exists(registry[1]):
            from opensem.release.registry import read_index

            fs, folder = registry
            found.releases = sorted(
                read_index(fs, posixpath.dirname(folder), posixpath.basename(folder))["tags"]
            )
            files = fs.find(folder)
            size = sum(int(fs.info(path).get("size", 0)) for path in files)
            found.paths.append((f"{folder} (the releases)", len(files), size))
    found.stages = _held(manifest, parts)
    return found


def delete(
    root: Path, name: str, manifest: Path, parts: frozenset[str] | None = None
) -> tuple[Doomed, int, int]:
    """Delete the expert (parts None) or some parts, then collect the store entries no lock uses;
    (what went, store entries collected, their bytes)."""
    from opensem.core.gc import collect
    from opensem.core.layout import Layout, lock_path
    from opensem.core.lock import read_lock, write_lock

    if parts is not None and not parts <= set(PARTS):
        raise ValueError(f"unknown parts: {sorted(parts - set(PARTS))}")
    gone = doomed(root, name, manifest, parts)
    if parts is None or "releases" in parts:
        registry = registry_folder(root, manifest)
        if registry is not None and registry[0].exists(registry[1]):
            registry[0].rm(registry[1], recursive=True)
    for path in _local(root, name, manifest, parts):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    lock = read_lock(lock_path(manifest)) if parts is not None else None
    if parts is not None and lock is not None:
        for stage in gone.stages:
            lock["stages"].pop(stage, None)
        if "releases" in parts:
            lock.pop("published", None)
        write_lock(lock_path(manifest), lock)
    layout = Layout(root)
    collected = collect(layout.store, layout.project_root, layout.build / "work", dry_run=False)
    return gone, len(collected.entries), collected.bytes
