"""Load a manifest from YAML with line numbers (opensem.settings.yaml), and report every problem at once.

Paths in a manifest are relative to the project root, never to the current directory: the
project root is the manifest's folder, or its parent when that folder is named `manifests`.
"""

from __future__ import annotations

from pathlib import Path

from opensem.core.layout import project_root_of
from opensem.manifest.models import manifest_model
from opensem.settings.yaml import load_yaml_model
from opensem.stages.loaded import LoadedManifest


def load_manifest(path: Path) -> LoadedManifest:
    """Parse, validate and check a manifest file; raise ManifestError listing every problem."""
    manifest, lines = load_yaml_model(
        Path(path), manifest_model(), "manifest", "start with `job_id: my-expert`"
    )
    return LoadedManifest(manifest, Path(path), project_root_of(Path(path)), lines, load_manifest)
