"""The OpenAI-compatible server: /v1/models, /v1/chat/completions, /v1/completions, /v1/feedback,
/health, /health/ready and /metrics.

Every error is OpenAI's shape with the right status (400 a bad request, 401 a bad or missing key,
404 an unknown model, 429 rate limited, 503 overloaded, 504 too slow), and the server keeps
serving. The server remembers the recent completions it gave (id -> model, lot, prompt, answer),
so feedback can refer to one by its id.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
import asyncio
import json
import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from opensem.serving.completions import (
    Outcome,
    generation_for,
    new_id,
    prompt_of,
    streamed,
    submit,
    whole,
)
from opensem.serving.config import ServeConfig
from opensem.serving.embeddings import embed
from opensem.serving.feedback import (
    RECENT,
    FeedbackRequest,
    record_answer_with_sources,
    record_feedback,
)
from opensem.serving.http import common_app
from opensem.serving.openai_api import ApiError, ChatRequest, CompletionRequest, EmbeddingRequest
from opensem.serving.ops import Metrics, RateLimiter, bearer, log_request
from opensem.serving.pool import ModelPool
from opensem.serving.tenancy import Tenancy, scoped, unscoped

CLIENT_GONE = 499  # the status nginx logs for a client that closed the connection first


@dataclass
class ServerState:
    config: ServeConfig
    pool: ModelPool
    key: str | None
    log: logging.Logger
    metrics: Metrics = field(init=False)
    limiter: RateLimiter = field(init=False)
    ready: bool = False
    started: float = field(default_factory=time.time)
    recent: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    tenancy: Tenancy | None = None  # many people's releases (opensem serve --accounts)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.pool.running)
        self.limiter = RateLimiter(self.config.rate_limit)

    def names(self, request: Request) -> list[str]:
        """The models the caller may use (their own, under accounts)."""
        return unscoped(_owner(request), self.pool.names())

    def remember(self, outcome: Outcome, lot: str | None, served_as: str) -> None:
        """Keep a served answer for feedback, with the lot that gave it and the pool's name of
        the model (which names its owner, under accounts)."""
        question = outcome.prompt
        # The prompt is the messages as JSON: feedback is about the last question
        if outcome.endpoint == "chat":
            question = next(
                (m["content"] for m in reversed(json.loads(outcome.prompt)) if m["role"] == "user"),
                question,
            )
        self.recent[outcome.id] = {
            "model": outcome.model,
            "served_as": served_as,
            "lot": lot,
            "prompt": question,
            "answer": outcome.text,
        }
        while len(self.recent) > RECENT:
            self.recent.popitem(last=False)


def create_app(state: ServerState) -> Any:
    """The model server's FastAPI app: the OpenAI endpoints, health and metrics."""
    app, protected = common_app("opensem", state)
    app.state.opensem = state

    def public_models() -> list[str] | int:
        """What anyone may know of the models: their names, or only how many under accounts."""
        names = state.pool.names()
        return len(names) if state.tenancy is not None else names

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "alive",
            "ready": state.ready,
            "backend": state.pool.backend,
            "models": public_models(),
            "uptime_s": round(time.time() - state.started, 1),
        }

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        return JSONResponse(
            {"ready": state.ready, "models": public_models()},
            status_code=200 if state.ready else 503,
        )

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        if state.tenancy is not None:  # its labels name everyone's experts: an admin's key only
            key = bearer(request.headers.get("authorization"))
            if not await asyncio.to_thread(state.tenancy.is_admin, key):
                raise ApiError(401, "the metrics need an admin's API key", code="invalid_api_key")
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", dependencies=protected)
    async def models(request: Request) -> dict[str, Any]:
        owner = _owner(request)
        cards = [_model_card(state, owner, name) for name in state.names(request)]
        return {"object": "list", "data": cards}

    @app.get("/v1/models/{name}", dependencies=protected)
    async def model(request: Request, name: str) -> dict[str, Any]:
        if name not in state.names(request):
            raise ApiError(
                404, f"the model {name!r} does not exist", param="model", code="model_not_found"
            )
        return _model_card(state, _owner(request), name)

    @app.post("/v1/chat/completions", response_model=None, dependencies=protected)
    async def chat(request: Request, body: ChatRequest) -> Any:
        return await _complete(state, request, body, "chat", StreamingResponse)

    @app.post("/v1/completions", response_model=None, dependencies=protected)
    async def completions(request: Request, body: CompletionRequest) -> Any:
        return await _complete(state, request, body, "completions", StreamingResponse)

    @app.post("/v1/embeddings", dependencies=protected)
    async def embeddings(request: Request, body: EmbeddingRequest) -> dict[str, Any]:
        served = state.pool.served.get(scoped(_owner(request), body.model))
        return await embed(served, body)

    @app.post("/v1/feedback", dependencies=protected)
    async def feedback(request: Request, body: FeedbackRequest) -> dict[str, Any]:
        return record_feedback(state, _owner(request), body)

    return app


def _owner(request: Request) -> str | None:
    """Whose releases a request may reach (its key's owner), under accounts."""
    return getattr(request.state, "owner", None)


def _model_card(state: ServerState, owner: str | None, name: str) -> dict[str, Any]:
    served = state.pool.served[scoped(owner, name)]
    return {
        "id": name,
        "object": "model",
        "created": int(state.started),
        "owned_by": "opensem",
        **served.release.describe(),
    }


async def _complete(
    state: ServerState,
    request: Request,
    body: ChatRequest | CompletionRequest,
    endpoint: str,
    streaming: Any,
) -> Any:
    served_as = scoped(_owner(request), body.model)
    served = state.pool.acquire(served_as)
    if served is None:
        state.metrics.requests.labels(
            "unknown", endpoint, "404"
        ).inc()  # labels stay bounded whatever clients send
        raise ApiError(
            404,
            f"the model {body.model!r} does not exist; this server serves: {', '.join(state.names(request))}",
            param="model",
            code="model_not_found",
        )
    try:  # a tokenizer is slow on a long prompt: off the event loop, so other requests go on meanwhile
        ids, text, hits = await asyncio.to_thread(
            prompt_of, body, served, state.config.max_prompt_tokens
        )
    except BaseException:
        state.pool.release(served)
        raise
    outcome = Outcome(
        new_id(endpoint), body.model, endpoint, text, prompt_tokens=len(ids), sources=hits
    )
    state.metrics.active.labels(served_as).inc()
    finished = False

    def finish() -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        state.pool.release(served)
        _account(state, outcome, served.release.lot, served_as)

    try:
        generation = generation_for(
            body, served, ids, state.config.default_max_tokens, state.config.max_tokens_limit
        )
        bridge = submit(served, generation)
        if not body.stream:
            answer = await whole(body, outcome, generation, bridge, state.config.request_timeout_s)
            state.remember(outcome, served.release.lot, served_as)
            record_answer_with_sources(state, outcome, served)
            return answer
    except ApiError as exc:
        outcome.status = exc.status
        raise
    except BaseException:
        outcome.status = 500
        raise
    finally:
        if not body.stream or outcome.status != 200:  # a stream that started finishes when it ends
            finish()

    async def events() -> Any:
        ended = False
        try:
            async for chunk in streamed(
                body, outcome, generation, bridge, state.config.request_timeout_s
            ):
                yield chunk
            ended = True
            if outcome.status == 200:
                state.remember(outcome, served.release.lot, served_as)
                record_answer_with_sources(state, outcome, served)
        finally:
            if not ended:
                outcome.status = CLIENT_GONE  # the client went away before the answer ended
            generation.cancelled.set()  # a client that went away stops its generation
            finish()

    return streaming(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _account(state: ServerState, outcome: Outcome, lot: str | None, served_as: str) -> None:
    """Count a finished request in the metrics (under the pool's name: whose, under accounts)
    and log it."""
    m = state.metrics
    m.active.labels(served_as).dec()
    m.requests.labels(served_as, outcome.endpoint, str(outcome.status)).inc()
    seconds = time.monotonic() - outcome.started
    if outcome.status == 200:
        m.latency.labels(served_as, outcome.endpoint).observe(seconds)
        m.tokens.labels(served_as).inc(outcome.completion_tokens)
        m.prompt_tokens.labels(served_as).inc(outcome.prompt_tokens)
        if outcome.first_token_s is not None:
            m.first_token.labels(served_as).observe(outcome.first_token_s)
    record = {
        k: v
        for k, v in asdict(outcome).items()
        if k not in ("prompt", "text", "started", "sources")
    }
    if outcome.sources:  # which chunks, not their text (that is the documents')
        record["sources"] = [hit.chunk.id for hit in outcome.sources]
    record.update(
        event="request",
        model=served_as,
        lot=lot,
        latency_s=round(seconds, 4),
        first_token_s=None if outcome.first_token_s is None else round(outcome.first_token_s, 4),
    )
    if state.config.log_prompts:
        record.update(prompt=outcome.prompt, answer=outcome.text)
    log_request(state.log, record)
