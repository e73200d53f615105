"""What every opensem HTTP server shares: OpenAI-shaped error bodies, CORS, and the key check.

The model server and the router answer a bad request the same way (400 with the offending
parameter, 404 for an unknown route, the ApiError's own status otherwise), so a client sees one
error format whichever it talks to.
"""

# No `from __future__ import annotations`: FastAPI reads the dependency's annotations at runtime.
from typing import Any, Callable, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from opensem.serving.openai_api import ApiError
from opensem.serving.ops import RateLimiter, check_key


class ServerState(Protocol):
    config: Any  # its cors_origins
    key: str | None
    limiter: RateLimiter


def common_app(title: str, state: ServerState, on_error: Callable[[str, int], None] = lambda path, status: None) -> tuple[FastAPI, list[Any]]:
    """A FastAPI app with the shared error handlers and CORS; returns it and the dependencies a
    protected route takes (the key, then the caller's rate limit, checked before the body is read).
    The key and limiter are read from state at each request, so an operator can swap them live."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    if state.config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=state.config.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"])

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        on_error(request.url.path, exc.status)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return JSONResponse(ApiError(400, f"{param + ': ' if param else ''}{first['msg'].removeprefix('Value error, ')}", param=param).body(), status_code=400)

    @app.exception_handler(404)
    async def missing(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(ApiError(404, f"no route {request.url.path}", code="not_found").body(), status_code=404)

    async def caller(request: Request) -> None:
        """Checked before the body is read: a request without a key is 401 whatever it holds."""
        state.limiter.take(check_key(state.key, request.headers.get("authorization")))

    return app, [Depends(caller)]
