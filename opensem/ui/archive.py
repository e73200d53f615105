"""An expert's data out and gone: export as a zip, delete with everything only it used.

Export takes any of the documents, the training dataset (in any of `opensem export`'s formats,
from the split stage the build made), the feedback and the published releases. Deleting an expert
says first what goes (files and bytes), then removes its manifest, lock, data folder and
releases, and collects the store entries no remaining lock refers to (`opensem gc`).
"""

from __future__ import annotations

import posixpath
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opensem.errors import OpensemError

PARTS = ("documents", "dataset", "feedback", "releases")
# Files that are compressed already, or hardly compress: stored as they are, which makes a zip
# with a model in it as fast to write as a copy.
STORED = (".safetensors", ".bin", ".gguf", ".png", ".pdf", ".npy", ".faiss", ".sqlite", ".zip")


@dataclass
class Doomed:
    """What deleting an expert removes."""

    paths: list[tuple[str, int, int]] = field(default_factory=list)  # (path, files, bytes)
    releases: list[str] = field(default_factory=list)

    @property
    def files(self) -> int:
        """Files in all."""
        return sum(files for _, files, _ in self.paths)

    @property
    def bytes(self) -> int:
        """Bytes in all."""
        return sum(size for _, _, size in self.paths)


def _raw(manifest: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def _registry(root: Path, manifest: Path) -> tuple[Any, str] | None:
    from opensem.release.registry import open_registry

    raw = _raw(manifest)
    target = raw.get("publish_target") or {}
    if not target.get("registry") or not raw.get("job_id"):
        return None
    fs, registry = open_registry(str(target["registry"]), root)
    return fs, posixpath.join(registry, str(raw["job_id"]))


def export_zip(root: Path, name: str, manifest: Path, parts: set[str], fmt: str) -> Path:
    """A zip of the chosen parts of an expert under build/ui/exports/; returns its path."""
    target = root / "build" / "ui" / "exports" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    notes = [f"opensem export of {name}, {time.strftime('%Y-%m-%d %H:%M')}"]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(manifest, f"{name}/manifest.yaml")
        data = root / "data" / name
        if "documents" in parts:
            _add_folder(archive, data / "raw", f"{name}/documents")
        if "feedback" in parts:
            _add_folder(archive, data / "feedback", f"{name}/feedback")
        if "dataset" in parts:
            notes.append(_add_dataset(archive, root, name, manifest, fmt))
        if "releases" in parts:
            found = _registry(root, manifest)
            if found is not None and found[0].exists(found[1]):
                fs, folder = found
                for path in sorted(fs.find(folder)):
                    relative = posixpath.relpath(path, folder)
                    with fs.open(path, "rb") as source:
                        _add_stream(archive, source, f"{name}/releases/{relative}")
        archive.writestr(f"{name}/README.txt", "\n".join(notes) + "\n")
    return target


def _add_folder(archive: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file() and path.name != ".gitkeep":
            with path.open("rb") as source:
                _add_stream(archive, source, f"{prefix}/{path.relative_to(folder).as_posix()}")


def _add_stream(archive: zipfile.ZipFile, source: Any, name: str) -> None:
    """Copy a file into the zip in pieces (a model never sits in memory whole)."""
    entry = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    stored = name.lower().endswith(STORED)
    entry.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with archive.open(entry, "w", force_zip64=True) as target:
        shutil.copyfileobj(source, target, 1024 * 1024)


def _add_dataset(archive: zipfile.ZipFile, root: Path, name: str, manifest: Path, fmt: str) -> str:
    """The split stage's train and test records in fmt; a note of what was written or why not."""
    import tempfile

    from opensem.core.events import CollectingReporter
    from opensem.data.export import export_dataset
    from opensem.project import load_graph, open_session

    session = open_session(load_graph(manifest), reporter=CollectingReporter())
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for file in ("train.jsonl", "test.jsonl"):
            output = Path(scratch) / file
            try:
                report = export_dataset(session, "split", fmt, output, file)
            except OpensemError as error:
                return f"dataset: not exported ({error.message})"
            archive.write(output, f"{name}/dataset/{fmt}-{file}")
            written.append(report.describe(fmt, Path(f"dataset/{fmt}-{file}")))
    session.digests.save()
    return "dataset: " + "; ".join(written)


def doomed(root: Path, name: str, manifest: Path) -> Doomed:
    """What deleting an expert would remove."""
    from opensem.core.layout import lock_path

    found = Doomed()
    for path in (manifest, lock_path(manifest), root / "data" / name):
        if path.exists():
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            size = sum(p.stat().st_size for p in files)
            found.paths.append((path.relative_to(root).as_posix(), len(files), size))
    registry = _registry(root, manifest)
    if registry is not None and registry[0].exists(registry[1]):
        from opensem.release.registry import read_index

        fs, folder = registry
        found.releases = sorted(
            read_index(fs, posixpath.dirname(folder), posixpath.basename(folder))["tags"]
        )
        files = fs.find(folder)
        size = sum(int(fs.info(path).get("size", 0)) for path in files)
        found.paths.append((f"{folder} (the releases)", len(files), size))
    return found


def delete_expert(root: Path, name: str, manifest: Path) -> tuple[Doomed, int, int]:
    """Delete an expert and collect the store entries only it used; (what went, entries, bytes)."""
    from opensem.core.gc import collect
    from opensem.core.layout import Layout, lock_path

    gone = doomed(root, name, manifest)
    registry = _registry(root, manifest)
    if registry is not None and registry[0].exists(registry[1]):
        registry[0].rm(registry[1], recursive=True)
    lock_path(manifest).unlink(missing_ok=True)
    manifest.unlink()
    shutil.rmtree(root / "data" / name, ignore_errors=True)
    layout = Layout(root)
    collected = collect(layout.store, layout.project_root, layout.build / "work", dry_run=False)
    return gone, len(collected.entries), collected.bytes
