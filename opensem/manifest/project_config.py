"""Build settings every manifest of a project shares, from `[tool.opensem]` in <project>/pyproject.toml.

A team names its stage cache (and where stages run) once for the project rather than in each
manifest; a manifest's own key wins, and OPENSEM_CACHE wins over both. The fields are the
manifest's very fields (`pick`), so type, default and description live in one place.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from opensem.errors import Location, ManifestError, Problem
from opensem.manifest.models import ManifestCore
from opensem.settings.fields import pick

TABLE = "[tool.opensem]"


@lru_cache(maxsize=1)
def project_config_model() -> type[BaseModel]:
    """The keys [tool.opensem] may set: the manifest's own cache and executor fields."""
    return pick(ManifestCore, "cache", "executor", name="ProjectConfig")


def read_project_config(project_root: Path) -> Any:
    """The project's [tool.opensem] settings (all unset when there is no such table or file)."""
    model = project_config_model()
    path = project_root / "pyproject.toml"
    if not path.is_file():
        return model()
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("opensem", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(
            [
                Problem(
                    f"cannot read {path.name}: {exc}",
                    Location(file=str(path)),
                    "fix the TOML syntax",
                )
            ]
        ) from None
    try:
        return model.model_validate(table)
    except ValidationError as exc:
        problems = [
            Problem(
                err["msg"],
                Location(file=str(path), key=".".join(["tool", "opensem", *map(str, err["loc"])])),
                f"{TABLE} takes {', '.join(model.model_fields)}; see the manifest reference for each",
            )
            for err in exc.errors()
        ]
        raise ManifestError(problems) from None
