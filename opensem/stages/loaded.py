"""A validated manifest as the stages see it: the model, where it came from, the line of every
key, and how to load another manifest of the project. The manifest floor makes it (load_manifest);
the stages only read it, so they never import the floor above them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensem.settings.yaml import KeyPath, line_for


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest together with where it came from."""

    manifest: Any  # an instance of manifest_model()
    path: Path
    project_root: Path
    lines: dict[KeyPath, int]
    load: Callable[
        [Path], LoadedManifest
    ]  # how another manifest of the project is loaded (a merge includes it)

    def line_of(self, key: KeyPath) -> int | None:
        """The manifest line of a key (or its nearest parent)."""
        return line_for(self.lines, key)

    def sources(self) -> list[Any]:
        """data.sources, or the conventional data/<job_id>/raw/ when the manifest names none."""
        from opensem.data.sources import DataSource

        return self.manifest.data.sources or [DataSource(path=f"data/{self.manifest.job_id}/raw")]
