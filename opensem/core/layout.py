"""Where things live, decided without importing anything heavy (the no-op path needs this)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opensem.core.store import Store


def project_root_of(manifest_path: Path) -> Path:
    """The manifest's folder, or its parent when that folder is named `manifests`."""
    folder = manifest_path.resolve().parent
    return folder.parent if folder.name == "manifests" else folder


def lock_path(manifest_path: Path) -> Path:
    """`<manifest stem>.lock` beside the manifest."""
    return manifest_path.with_suffix(".lock")


@dataclass(frozen=True)
class Layout:
    """A project's build outputs: everything under <project>/build/."""

    project_root: Path

    @property
    def build(self) -> Path:
        """The project's output folder."""
        return self.project_root / "build"

    @property
    def store(self) -> Store:
        """The content-addressed store of stage outputs."""
        from opensem.core.store import Store

        return Store(self.build / "store")

    @property
    def digest_cache_file(self) -> Path:
        """Where file digests are cached between builds."""
        return self.build / "cache" / "digests.json"

    def doit_db(self, pid: int) -> Path:
        """doit's dependency file for one process: opensem's tasks decide staleness by lot, so doit's
        records are never needed again, and two builds at once must not share one JSON file."""
        return self.build / "doit" / f"{pid}.json"
