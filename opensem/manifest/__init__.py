"""The manifest: pydantic models, YAML loading with line numbers, and schema export."""

from opensem.manifest.loader import LoadedManifest, load_manifest, project_root_of
from opensem.manifest.models import TrainingManifest
from opensem.manifest.schema import manifest_schema

__all__ = ["LoadedManifest", "TrainingManifest", "load_manifest", "manifest_schema", "project_root_of"]
