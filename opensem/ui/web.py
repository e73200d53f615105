"""What the route modules share: an expert's manifest by name (or 404), and a JSON problem."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from opensem.ui.experts import manifest_named


def manifest_or_404(root: Path, name: str) -> Path:
    """The manifest of an expert; the not-found page when there is none."""
    manifest = manifest_named(root, name)
    if manifest is None:
        raise HTTPException(404)
    return manifest


def json_problem(error: ValidationError) -> JSONResponse:
    """A 400 answer naming the first field of a JSON body that is wrong, and why."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return JSONResponse({"error": f"{where}: {first.get('msg')}"}, status_code=400)
