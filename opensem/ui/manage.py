"""The export and delete pages of an expert."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from opensem.data.formats import EXPORT_FORMATS
from opensem.ui.archive import PARTS, export_zip
from opensem.ui.chat import Releases
from opensem.ui.job_table import ACTIVE
from opensem.ui.removal import delete, doomed
from opensem.ui.web import manifest_or_404


def add_manage_routes(app: FastAPI, releases: Releases) -> None:
    """GET and POST /experts/{name}/export and /experts/{name}/delete."""
    from opensem.ui.app import require_csrf

    root = app.state.root

    def manifest_of(name: str) -> Path:
        return manifest_or_404(root, name)

    @app.get("/experts/{name}/export", response_class=HTMLResponse)
    async def export_page(request: Request, name: str) -> HTMLResponse:
        manifest_of(name)
        context = {"name": name, "parts": PARTS, "formats": EXPORT_FORMATS}
        page: HTMLResponse = app.state.page(request, "export.html", context)
        return page

    @app.post("/experts/{name}/export")
    async def export(request: Request, name: str) -> FileResponse:
        await require_csrf(request)
        manifest = manifest_of(name)
        form = await request.form()
        parts = {part for part in PARTS if form.get(part) == "on"}
        fmt = str(form.get("format") or EXPORT_FORMATS[0])
        if fmt not in EXPORT_FORMATS:
            raise HTTPException(400, f"unknown dataset format {fmt!r}")
        made = await asyncio.to_thread(export_zip, root, name, manifest, parts, fmt)
        app.state.audit("download", f"export of {name}: {', '.join(sorted(parts)) or 'manifest'}")
        return FileResponse(made, filename=made.name, media_type="application/zip")

    def chosen(form: FormData) -> frozenset[str] | None:
        """The parts a delete names; None for the whole expert."""
        if form.get("what") != "parts":
            return None
        return frozenset(part for part in PARTS if form.get(part) == "on")

    async def delete_page(
        request: Request, name: str, parts: frozenset[str] | None, problem: str = ""
    ) -> HTMLResponse:
        manifest = manifest_of(name)

        def listings() -> dict[str, object]:  # walks folders and the registry: off the loop
            whole = doomed(root, name, manifest)
            each = {part: doomed(root, name, manifest, frozenset({part})) for part in PARTS}
            return {"doomed": whole, "parts": each}

        context = {
            "name": name,
            **await asyncio.to_thread(listings),
            "chosen": parts or frozenset(),
            "problem": problem,
        }
        page: HTMLResponse = app.state.page(
            request, "delete.html", context, status=400 if problem else 200
        )
        return page

    @app.get("/experts/{name}/delete", response_class=HTMLResponse)
    async def ask_delete(request: Request, name: str) -> HTMLResponse:
        return await delete_page(request, name, None)

    @app.post("/experts/{name}/delete", response_class=HTMLResponse)
    async def do_delete(request: Request, name: str) -> HTMLResponse:
        await require_csrf(request)
        manifest = manifest_of(name)
        form = await request.form()
        parts = chosen(form)
        relative = manifest.relative_to(root).as_posix()
        busy = [job for job in app.state.jobs.recent(relative) if job.state in ACTIVE]
        problem = ""
        if form.get("confirm") != name:
            problem = f"type {name} to confirm"
        elif parts is not None and not parts:
            problem = "choose what to delete"
        elif busy:
            problem = f"job #{busy[0].id} is building it: cancel it first"
        if problem:
            return await delete_page(request, name, parts, problem)
        if parts is None or "releases" in parts:
            releases.stop(name)
        gone, entries, size = await asyncio.to_thread(delete, root, name, manifest, parts)
        if parts is None:
            app.state.keys.forget(name)
        app.state.audit("delete", f"{name}: {', '.join(sorted(parts)) if parts else 'the expert'}")
        context = {
            "name": name,
            "whole": parts is None,
            "parts": sorted(parts or ()),
            "gone": gone,
            "entries": entries,
            "collected": size,
        }
        done: HTMLResponse = app.state.page(request, "deleted.html", context)
        return done
