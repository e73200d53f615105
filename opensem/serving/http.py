"""What every opensem HTTP server shares: OpenAI-shaped error bodies, CORS, and the key check.

The model server and the router answer a bad request the same way (400 with the offending
parameter, 404 for an unknown route, the ApiError's own status otherwise), so a client sees one
error format whichever it talks to.
"""

# No `from __future__ import annotations`: FastAPI reads the dependency's annotations at runtime.
import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opensem.serving.openai_api import ApiError
from opensem.serving.ops import RateLimiter, bearer, check_key


class ServerState(Protocol):
    config: Any  # its cors_origins
    key: str | None
    limiter: RateLimiter


def common_app(
    title: str, state: ServerState, on_error: Callable[[str, int], None] = lambda path, status: None
) -> tuple[FastAPI, list[Any]]:
    """A FastAPI app with the shared error handlers and CORS; returns it and the dependencies a
    protected route takes (the key, then the caller's rate limit, checked before the body is read).
    The key and limiter are read from state at each request, so an operator can swap them live."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    if state.config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=state.config.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyLimit, limit=state.config.max_request_bytes)

    def answer(request: Request, error: ApiError) -> JSONResponse:
        on_error(request.url.path, error.status)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":  # its loc is a character offset, not a field
            reason = (first.get("ctx") or {}).get("error", first["msg"])
            return answer(
                request, ApiError(400, f"the body is not valid JSON: {reason}", code="invalid_json")
            )
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return answer(
            request,
            ApiError(
                400,
                f"{param + ': ' if param else ''}{first['msg'].removeprefix('Value error, ')}",
                param=param,
            ),
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """Starlette's own answers (no route, wrong method, a body it cannot parse) in OpenAI's shape."""
        messages = {
            404: f"no route {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
            400: "the body could not be read: send UTF-8 JSON no deeper than Python's parser allows",
        }
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
            exc.status_code, "invalid_request"
        )
        return answer(
            request,
            ApiError(
                exc.status_code,
                messages.get(exc.status_code, str(exc.detail)),
                code=code,
                headers=dict(exc.headers or {}),
            ),
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        """A bug, answered as a server error in OpenAI's shape; the log gets one line, not a traceback."""
        logging.getLogger("opensem.serve").error(
            "%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc
        )
        return answer(
            request, ApiError(500, f"internal error: {type(exc).__name__}", code="internal_error")
        )

    async def caller(request: Request) -> None:
        """Checked before the body is read: a request without a key is 401 whatever it holds.
        Serving many people's releases, the key names its owner (request.state.owner)."""
        tenancy = getattr(state, "tenancy", None)
        if tenancy is None:
            state.limiter.take(check_key(state.key, request.headers.get("authorization")))
            return
        key = bearer(request.headers.get("authorization"))
        owner = await asyncio.to_thread(tenancy.caller, key)
        if owner is None:
            raise ApiError(401, "incorrect API key", code="invalid_api_key")
        request.state.owner = owner
        state.limiter.take(key)

    return app, [Depends(caller)]


class BodyLimit:
    """413 in OpenAI's shape for a body over the limit: by its Content-Length before reading it, or
    as soon as a chunked body passes the limit, so a huge request never reaches the parser."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass requests on, refusing a body over the limit with 413 before it is all read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await JSONResponse(self.too_large().body(), status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(
                    413, self.too_large().message
                )  # raised inside the route: answered by the handler above
            return message

        await self.app(scope, counted, send)

    def too_large(self) -> ApiError:
        """The 413 error in OpenAI's shape."""
        return ApiError(
            413,
            f"the request body is larger than this server accepts ({self.limit:,} bytes)",
            code="request_too_large",
        )
