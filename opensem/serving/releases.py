"""What to serve: releases, from a manifest (its latest published tag), a registry (an expert's
folder, a tag or its latest), or a release folder on disk.

A source is written `[name=]where[@tag][#folded]`. Releases from a registry are pulled into a
local cache, every file checked against its digest, and reused while the index's digest for the
tag stays the same. An adapter release is served on its base model (shipped with it for a tiny
base, a hub id otherwise), so several adapters share one loaded base; `#folded` serves the
release's folded model instead, a whole-model release (method sft) is always served whole.
"""

from __future__ import annotations

import posixpath
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import yaml

from opensem.errors import Location, UsageError

SOURCE = re.compile(
    r"^(?:(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)=)?(?P<where>[^@#]+?)(?:@(?P<tag>[^#]+))?(?:#(?P<variant>folded))?$"
)


@dataclass(frozen=True)
class Release:
    """One servable release, resolved to files on this machine."""

    name: str  # the model name clients ask for
    job_id: str
    tag: str | None
    lot: str | None
    kind: Literal["adapter", "model"]
    artifact: Path  # the adapter folder, or the whole model's folder
    base: str | None  # adapters only: the base model's folder or hub id
    origin: str  # where it came from, as written
    feedback_dir: Path | None = None  # served from a manifest: where feedback is kept
    knowledge: Path | None = None  # the release's knowledge base, when it has one

    def describe(self) -> dict[str, str | None]:
        """What /v1/models says about the release."""
        return {
            "job_id": self.job_id,
            "tag": self.tag,
            "lot": self.lot,
            "kind": self.kind,
            "source": self.origin,
        }


def parse_source(text: str) -> tuple[str | None, str, str | None, bool]:
    """(name, where, tag, folded) of a source as written on the command line."""
    match = SOURCE.match(text.strip())
    if match is None:
        raise UsageError(
            f"cannot read the release source {text!r}",
            Location(key="SOURCES"),
            hint="write [name=]MANIFEST.yaml, [name=]REGISTRY/EXPERT[@tag] or [name=]FOLDER, optionally #folded",
        )
    return match["name"], match["where"], match["tag"], bool(match["variant"])


def resolve(text: str, cache_dir: Path) -> Release:
    """The release a source names, with its files on this machine (pulled and checked when remote)."""
    name, where, tag, folded = parse_source(text)
    path = Path(where)
    if "://" not in where and not path.exists():
        raise UsageError(
            "no such manifest, registry folder or release folder",
            Location(file=where),
            hint="check the path; a remote registry is written as a URL (s3://bucket/registry/expert)",
        )
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _from_manifest(path, name, tag, folded, cache_dir, text)
    if "://" not in where and path.is_dir() and not (path / "index.json").is_file():
        return _from_folder(path, name, folded, text, tag=tag)
    return _from_registry(where, Path("."), name, tag, folded, cache_dir, text)


def _from_manifest(
    manifest: Path, name: str | None, tag: str | None, folded: bool, cache_dir: Path, origin: str
) -> Release:
    from opensem.core.layout import lock_path, project_root_of
    from opensem.core.lock import read_lock

    data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    target = data.get("publish_target") or {}
    if not target.get("registry"):
        raise UsageError(
            "the manifest publishes nothing (no publish_target)",
            Location(file=str(manifest), key="publish_target"),
            hint="add publish_target, build, then serve",
        )
    published = (read_lock(lock_path(manifest)) or {}).get("published") or {}
    tag = tag or published.get("tag")
    if not tag:
        raise UsageError(
            "nothing of this manifest is published yet",
            Location(file=str(manifest)),
            hint=f"run `opensem build {manifest}` first",
        )
    root = project_root_of(manifest)
    folder = posixpath.join(str(target["registry"]), str(data["job_id"]))
    release = _from_registry(
        folder, root, name or str(data["job_id"]), tag, folded, cache_dir, origin, project_root=root
    )
    feedback = (data.get("feedback") or {}).get("path") or f"data/{data['job_id']}/feedback"
    return replace(release, feedback_dir=root / feedback)


def release_folder(folder: Path, project_root: Path | None = None) -> Release:
    """A release already on this machine (pulled into a folder), resolved as `opensem serve` would
    serve it: its own artifact on its own base."""
    return _from_folder(folder, None, False, str(folder), project_root=project_root)


def _from_registry(
    folder: str,
    root: Path,
    name: str | None,
    tag: str | None,
    folded: bool,
    cache_dir: Path,
    origin: str,
    project_root: Path | None = None,
) -> Release:
    from opensem.release.registry import local_release_digest, open_registry, pull, read_index

    fs, path = open_registry(folder, root)
    job_id = posixpath.basename(path.rstrip("/"))
    tags = read_index(fs, posixpath.dirname(path), job_id)["tags"]
    if not tags:
        raise UsageError(
            "nothing is published here", Location(file=folder), hint="publish a release there first"
        )
    tag = tag or list(tags)[-1]  # the index keeps publishing order: the last is the latest
    entry = tags.get(tag)
    if entry is None:
        raise UsageError(
            f"no release {tag!r} is published here",
            Location(file=folder),
            hint=f"its releases: {', '.join(tags)}",
        )
    local = cache_dir / job_id / tag
    # Pulled once, reused while it checks out
    if not local.is_dir() or local_release_digest(local) != entry["digest"]:
        shutil.rmtree(local, ignore_errors=True)
        pull(fs, posixpath.dirname(path), job_id, tag, local)
    return _from_folder(
        local,
        name or job_id,
        folded,
        origin,
        tag=tag,
        lot=str(entry["lot"]),
        job_id=job_id,
        project_root=project_root,
    )


def _from_folder(
    folder: Path,
    name: str | None,
    folded: bool,
    origin: str,
    tag: str | None = None,
    lot: str | None = None,
    job_id: str | None = None,
    project_root: Path | None = None,
) -> Release:
    manifest = (
        yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8"))
        if (folder / "manifest.yaml").is_file()
        else {}
    )
    job_id = job_id or str(manifest.get("job_id") or folder.name)
    name = name or job_id
    if (folder / "provider_model.json").is_file():
        tuned = yaml.safe_load((folder / "provider_model.json").read_text(encoding="utf-8"))
        raise UsageError(
            f"the release is a model at its provider: {tuned.get('model')}",
            Location(file=str(folder)),
            f"call it there: base_url {tuned.get('base_url')}, model {tuned.get('model')}",
        )
    if folded and not (folder / "folded").is_dir():
        raise UsageError(
            "the release has no folded model",
            Location(file=origin),
            hint="add `fold: {}` to its manifest and publish again, or serve it without #folded",
        )
    candidates = (
        ("model", folder / "folded" if folded else None),
        ("adapter", folder / "adapter"),
        ("model", folder / "model"),
        ("model", folder / "folded"),
    )
    # The release's model folders, or the folder itself when it is a plain model
    for kind, candidate in (
        *candidates,
        ("model", folder if (folder / "config.json").is_file() else None),
    ):
        if candidate is not None and candidate.is_dir():
            base = _base_of(folder, manifest, project_root) if kind == "adapter" else None
            knowledge = (
                folder / "knowledge" if (folder / "knowledge" / "index.json").is_file() else None
            )
            return Release(
                name,
                job_id,
                tag,
                lot,
                kind,  # type: ignore[arg-type]
                candidate,
                base,
                origin,
                knowledge=knowledge,
            )
    raise UsageError(
        "no servable model here (adapter/, model/, folded/ or a model's config.json)",
        Location(file=str(folder)),
        hint="point at a release folder written by `opensem build` or `opensem pull`, or a model folder",
    )


def _base_of(folder: Path, manifest: dict[str, object], project_root: Path | None) -> str:
    """The base an adapter release is served on: shipped with it, a hub id, or the project's folder."""
    if (folder / "base_model" / "model").is_dir():
        return str(folder / "base_model" / "model")
    base = manifest.get("base_model")
    if isinstance(base, str) and not base.startswith(("./", "../", "/", "~")):
        return base  # a hub id
    if isinstance(base, str) and project_root is not None:
        return str((project_root / base).resolve())
    raise UsageError(
        f"the adapter's base model ({base!r}) is not in the release",
        Location(file=str(folder)),
        hint="serve it from its manifest, in its project",
    )
