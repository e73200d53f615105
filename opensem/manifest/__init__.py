"""The manifest: sections assembled from what stage kinds declare, YAML loading with line numbers,
and the JSON Schema and README reference generated from the same models.

Attributes load on first use, so modules that only need the field helpers (opensem.settings.fields)
do not pay for the loader.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "LoadedManifest": "opensem.manifest.loader",
    "load_manifest": "opensem.manifest.loader",
    "manifest_model": "opensem.manifest.models",
    "manifest_schema": "opensem.manifest.schema",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _EXPORTS:
        raise AttributeError(f"module 'opensem.manifest' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
