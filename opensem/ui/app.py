"""`opensem ui`: the browser interface, a FastAPI app over the project folder the CLI uses.

Server-rendered pages (Jinja2) with a little plain JavaScript: a job's page follows its build
live over server-sent events. Every form carries a CSRF token; every error is a page that says
what went wrong and what to do, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from opensem.errors import OpensemError
from opensem.ui import security
from opensem.ui.chat import Releases
from opensem.ui.experts import expert_view, manifests
from opensem.ui.job_table import ACTIVE
from opensem.ui.jobs import Audit, JobQueue
from opensem.ui.keys import KeyStore
from opensem.ui.tenant import Tenant
from opensem.ui.web import manifest_or_404

HERE = Path(__file__).parent
EVENT_POLL_S = 0.25
log = logging.getLogger(__name__)


def create_app(project_root: Path, workers: int = 1, tenant: Tenant | None = None) -> FastAPI:
    """The interface of one project; its job workers start and stop with the app. Under
    accounts, tenant is the person it is made for: the header names them, their jobs live in the
    accounts database, the audit log hears of their jobs, publishes, downloads and deletions, and
    their provider jobs count against their budget."""
    from contextlib import asynccontextmanager

    root = project_root.resolve()
    secret = security.project_secret(root)
    keys = KeyStore(root, secret)
    audit: Audit = tenant.audit if tenant else _unheard
    database = tenant.accounts.engine if tenant else None
    jobs = JobQueue(root, workers, keys, audit, database, tenant.user_id if tenant else None)
    label = tenant.label if tenant else None
    served = Releases(root)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        yield
        await asyncio.to_thread(served.stop_all)
        await asyncio.to_thread(jobs.stop)

    app = shell(root, secret, lifespan, label)
    app.state.jobs, app.state.keys, app.state.served = jobs, keys, served
    app.state.audit, app.state.tenant = audit, tenant
    page = app.state.page

    from opensem.ui.cost import add_build_routes
    from opensem.ui.create import add_create_routes
    from opensem.ui.data import add_data_routes
    from opensem.ui.manage import add_manage_routes
    from opensem.ui.releases import add_release_routes
    from opensem.ui.talk import add_chat_routes

    add_create_routes(app)  # before /experts/{name}, which would take "new" for a name
    add_chat_routes(app, served)
    add_manage_routes(app, served)
    add_data_routes(app)
    add_build_routes(app)
    add_release_routes(app)

    @app.get("/", response_class=HTMLResponse)
    async def experts(request: Request) -> HTMLResponse:
        views = [
            await asyncio.to_thread(expert_view, root, manifest, jobs)
            for manifest in manifests(root)
        ]
        return page(request, "experts.html", {"experts": views})

    @app.get("/experts/{name}", response_class=HTMLResponse)
    async def expert(request: Request, name: str) -> HTMLResponse:
        manifest = manifest_or_404(root, name)
        view = await asyncio.to_thread(expert_view, root, manifest, jobs)
        return page(request, "expert.html", {"expert": view})

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard_page(request: Request) -> HTMLResponse:
        from opensem.ui.dashboard import dashboard

        return page(request, "dashboard.html", await asyncio.to_thread(dashboard, root, jobs))

    @app.get("/jobs", response_class=HTMLResponse)
    async def job_list(request: Request) -> HTMLResponse:
        return page(request, "jobs.html", {"jobs": jobs.recent(limit=200)})

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    async def job_page(request: Request, job_id: int) -> HTMLResponse:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404)
        context = {"job": job, "name": Path(job.manifest).stem, "log": jobs.log_tail(job_id)}
        return page(request, "job.html", context)

    @app.post("/jobs/{job_id}/cancel")
    async def cancel(request: Request, job_id: int) -> RedirectResponse:
        await require_csrf(request)
        if jobs.get(job_id) is None:
            raise HTTPException(404)
        await asyncio.to_thread(jobs.cancel, job_id)
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)

    @app.get("/jobs/{job_id}/events")
    async def job_events(request: Request, job_id: int) -> StreamingResponse:
        if jobs.get(job_id) is None:
            raise HTTPException(404)
        return StreamingResponse(_follow(jobs, job_id, request), media_type="text/event-stream")

    return app


def shell(root: Path, secret: bytes, lifespan: Any = None, label: str | None = None) -> FastAPI:
    """An app with what every page of the interface needs: the session cookie and its CSRF
    tokens, the templates, static files, and errors as pages (the sign-in pages use it too)."""
    app = FastAPI(title="opensem", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.root, app.state.secret = root, secret
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["when"] = _when
    templates.env.filters["size"] = _size
    app.state.templates = templates

    @app.middleware("http")
    async def session_cookie(request: Request, call_next: Any) -> Response:
        session = request.cookies.get(security.SESSION_COOKIE)
        fresh = session is None
        request.state.session = session or security.new_session()
        request.state.fresh = fresh
        response: Response = await call_next(request)
        if fresh:
            # Secure when the browser came over https (itself, or through a proxy that says so)
            https = "https" in (request.url.scheme, request.headers.get("x-forwarded-proto"))
            response.set_cookie(
                security.SESSION_COOKIE,
                request.state.session,
                httponly=True,
                samesite="strict",
                secure=https,
            )
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    def page(
        request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        """A rendered page with what every page needs."""
        context = {
            "csrf": security.csrf_token(secret, request.state.session),
            "project": label or root.name,
            **context,
        }
        return templates.TemplateResponse(request, name, context, status_code=status)

    app.state.page = page

    @app.exception_handler(OpensemError)
    async def opensem_error(request: Request, error: OpensemError) -> HTMLResponse:
        context = {"message": error.message, "where": str(error.location), "hint": error.hint}
        return page(request, "error.html", context, status=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> HTMLResponse:
        message = "there is no such page" if error.status_code == 404 else str(error.detail)
        return page(request, "error.html", {"message": message}, status=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> HTMLResponse:
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in error.errors())
        context = {"message": "this address or form is not valid", "where": where}
        return page(request, "error.html", context, status=400)

    @app.exception_handler(Exception)
    async def crash(request: Request, error: Exception) -> HTMLResponse:
        log.error(
            "%s %s failed: %s: %s", request.method, request.url.path, type(error).__name__, error
        )
        context = {"message": "something went wrong on the server", "hint": "its log says what"}
        return page(request, "error.html", context, status=500)

    return app


async def _follow(jobs: JobQueue, job_id: int, request: Request) -> AsyncIterator[str]:
    """A job's events as server-sent events, until it ends (then an `end` event with its state)."""
    offset = 0
    while not await request.is_disconnected():
        job = jobs.get(job_id)
        events, offset = await asyncio.to_thread(jobs.events, job_id, offset)
        for event in events:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
        if job is None or (job.state not in ACTIVE and not events):
            state = job.state if job else "gone"
            yield f"event: end\ndata: {json.dumps({'state': state})}\n\n"
            return
        await asyncio.sleep(EVENT_POLL_S)


async def require_csrf(request: Request) -> None:
    """Refuse a state-changing request whose CSRF token is not its session's (403)."""
    session = None if request.state.fresh else request.state.session
    if not security.csrf_valid(request.app.state.secret, session, await _token(request)):
        raise HTTPException(403, "this form has expired: reload the page and send it again")


async def _token(request: Request) -> str | None:
    """The CSRF token of a request: its header, or its form's field."""
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form(max_files=64, max_part_size=security.MAX_UPLOAD_BYTES + 1)
        value = form.get("csrf")
        return value if isinstance(value, str) else None
    return None


def _unheard(action: str, target: str) -> None:
    """No audit log: one person on one machine."""


def _when(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count:.0f} {unit}"
        count //= 1024
    return f"{count} GB"
