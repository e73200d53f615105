"""An expert's data out: any of its parts as a zip.

Export takes any of the documents, the training dataset (in any of `opensem export`'s formats,
from the split stage the build made), the feedback and the published releases (removal.py deletes
the same parts).
"""

from __future__ import annotations

import posixpath
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import yaml

from opensem.errors import OpensemError

PARTS = ("documents", "dataset", "feedback", "releases")
# Files that are compressed already, or hardly compress: stored as they are, which makes a zip
# with a model in it as fast to write as a copy.
STORED = (".safetensors", ".bin", ".gguf", ".png", ".pdf", ".npy", ".faiss", ".sqlite", ".zip")


def raw_manifest(manifest: Path) -> dict[str, Any]:
    """The manifest as plain YAML (the delete and export pages need a few keys, not a plan)."""
    loaded = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def registry_folder(root: Path, manifest: Path) -> tuple[Any, str] | None:
    """(filesystem, folder) of the expert's releases, or None when it publishes nowhere."""
    from opensem.release.registry import open_registry

    raw = raw_manifest(manifest)
    target = raw.get("publish_target") or {}
    if not target.get("registry") or not raw.get("job_id"):
        return None
    fs, registry = open_registry(str(target["registry"]), root)
    return fs, posixpath.join(registry, str(raw["job_id"]))


def document_paths(root: Path, name: str, manifest: Path) -> list[Path]:
    """The manifest's local sources inside data/NAME/ (never anything outside it), as root/...."""
    data = root / "data" / name
    inside = data.resolve()
    found = []
    for source in (raw_manifest(manifest).get("data") or {}).get("sources") or []:
        path = source.get("path") if isinstance(source, dict) else None
        if not isinstance(path, str) or "://" in path:
            continue
        resolved = (root / path).resolve()
        if resolved.is_relative_to(inside) and resolved != inside and resolved.exists():
            found.append(data / resolved.relative_to(inside))
    return found


def export_zip(root: Path, name: str, manifest: Path, parts: set[str], fmt: str) -> Path:
    """A zip of the chosen parts of an expert under build/ui/exports/; returns its path."""
    target = root / "build" / "ui" / "exports" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    notes = [f"opensem export of {name}, {time.strftime('%Y-%m-%d %H:%M')}"]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(manifest, f"{name}/manifest.yaml")
        data = root / "data" / name
        if "documents" in parts:
            sources = document_paths(root, name, manifest)
            for source in sources:
                if source.is_dir():  # several sources each keep their folder's name
                    inner = f"/{source.name}" if len(sources) > 1 else ""
                    _add_folder(archive, source, f"{name}/documents{inner}")
                else:
                    with source.open("rb") as handle:
                        _add_stream(archive, handle, f"{name}/documents/{source.name}")
        if "feedback" in parts:
            _add_folder(archive, data / "feedback", f"{name}/feedback")
        if "dataset" in parts:
            notes.append(_add_dataset(archive, root, name, manifest, fmt))
        if "releases" in parts:
            found = registry_folder(root, manifest)
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
