"""A release's page: its metrics, its report plots, the settings that differ from the release
before it, its files to download, and deleting it.

Files are served only by the names the release's files.json lists, read through the registry's
filesystem, so a name can never reach beyond the release.
"""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from opensem.ui.experts import ReleaseRow, manifest_yaml, releases
from opensem.ui.web import manifest_or_404


def flat(tree: Any, prefix: str = "") -> dict[str, str]:
    """A manifest as dotted keys and their values as YAML text."""
    if isinstance(tree, dict):
        found: dict[str, str] = {}
        for key, value in tree.items():
            found.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {
        prefix: yaml.safe_dump(tree, default_flow_style=True).strip().removesuffix("...").strip()
    }


def differences(fs: Any, folder: str, tag: str, before: str | None) -> list[tuple[str, str, str]]:
    """(key, before, now) for every manifest setting that differs from the release before."""
    if before is None:
        return []

    def manifest(of: str) -> dict[str, str]:
        try:
            return flat(yaml.safe_load(fs.cat_file(posixpath.join(folder, of, "manifest.yaml"))))
        except (OSError, yaml.YAMLError):
            return {}

    old, new = manifest(before), manifest(tag)
    return [
        (key, old.get(key, "(unset)"), new.get(key, "(unset)"))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def add_release_routes(app: FastAPI) -> None:
    """GET /experts/{name}/releases/{tag}, its files, and POST .../delete."""
    from opensem.release.registry import open_registry, unpublish
    from opensem.ui.app import require_csrf

    root: Path = app.state.root

    def located(name: str, tag: str) -> tuple[Any, str, list[ReleaseRow], ReleaseRow]:
        raw = manifest_yaml(manifest_or_404(root, name))
        rows = releases(root, raw)
        row = next((r for r in rows if r.tag == tag), None)
        if row is None:
            raise HTTPException(404)
        fs, registry = open_registry(str(raw["publish_target"]["registry"]), root)
        return fs, posixpath.join(registry, str(raw["job_id"])), rows, row

    @app.get("/experts/{name}/releases/{tag}", response_class=HTMLResponse)
    async def release_page(request: Request, name: str, tag: str) -> HTMLResponse:
        fs, folder, rows, row = located(name, tag)
        older = rows[rows.index(row) + 1 :]
        context = {
            "name": name,
            "release": row,
            "before": older[0].tag if older else None,
            "changed": differences(fs, folder, tag, older[0].tag if older else None),
            "plots": [f for f in row.files if f.endswith(".png")],
        }
        page: HTMLResponse = app.state.page(request, "release.html", context)
        return page

    @app.get("/experts/{name}/releases/{tag}/files/{file:path}")
    async def release_file(name: str, tag: str, file: str) -> Response:
        fs, folder, _, row = located(name, tag)
        if file not in row.files:
            raise HTTPException(404)
        kind = mimetypes.guess_type(file)[0] or "application/octet-stream"
        headers = {} if kind == "image/png" else {"Content-Disposition": "attachment"}
        path = posixpath.join(folder, tag, file)

        def pieces() -> Iterator[bytes]:  # a model file never sits in memory whole
            with fs.open(path, "rb") as source:
                while piece := source.read(1024 * 1024):
                    yield piece

        if kind != "image/png":  # the release page's own plots are not downloads
            app.state.audit("download", f"{name} {tag} {file}")
        return StreamingResponse(pieces(), media_type=kind, headers=headers)

    @app.post("/experts/{name}/releases/{tag}/delete")
    async def delete_release(request: Request, name: str, tag: str) -> RedirectResponse:
        await require_csrf(request)
        fs, folder, _, _ = located(name, tag)
        unpublish(fs, posixpath.dirname(folder), posixpath.basename(folder), tag)
        app.state.audit("delete", f"{name} release {tag}")
        return RedirectResponse(f"/experts/{name}", status_code=303)
