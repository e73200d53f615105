"""The JSON Schema of a TrainingManifest, generated from the assembled pydantic model."""

from __future__ import annotations

import json
from typing import Any

from opensem.manifest.models import manifest_model

SCHEMA_ID = "https://opensem.dev/schemas/training-manifest.schema.json"


def manifest_schema() -> dict[str, Any]:
    """The manifest's JSON Schema, from the assembled pydantic model."""
    schema = manifest_model().model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def manifest_schema_text() -> str:
    """The schema as checked in: stable key order and a trailing newline."""
    return json.dumps(manifest_schema(), indent=2, sort_keys=True) + "\n"
