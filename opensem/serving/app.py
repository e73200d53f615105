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

from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

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
from opensem.serving.http import common_app
from opensem.serving.openai_api import ApiError, ChatRequest, CompletionRequest, EmbeddingRequest
from opensem.serving.ops import Metrics, RateLimiter, log_request
from opensem.serving.pool import ModelPool

RECENT = 10_000  # completions remembered for feedback
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

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.pool.running)
        self.limiter = RateLimiter(self.config.rate_limit)

    def remember(self, outcome: Outcome, lot: str | None) -> None:
        """Keep a served answer for feedback, with the lot that gave it."""
        question = outcome.prompt
        # The prompt is the messages as JSON: feedback is about the last question
        if outcome.endpoint == "chat":
            question = next(
                (m["content"] for m in reversed(json.loads(outcome.prompt)) if m["role"] == "user"),
                question,
            )
        self.recent[outcome.id] = {
            "model": outcome.model,
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

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "alive",
            "ready": state.ready,
            "backend": state.pool.backend,
            "models": state.pool.names(),
            "uptime_s": round(time.time() - state.started, 1),
        }

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        return JSONResponse(
            {"ready": state.ready, "models": state.pool.names()},
            status_code=200 if state.ready else 503,
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", dependencies=protected)
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(state, name) for name in state.pool.names()]}

    @app.get("/v1/models/{name}", dependencies=protected)
    async def model(name: str) -> dict[str, Any]:
        if name not in state.pool.names():
            raise ApiError(
                404, f"the model {name!r} does not exist", param="model", code="model_not_found"
            )
        return _model_card(state, name)

    @app.post("/v1/chat/completions", response_model=None, dependencies=protected)
    async def chat(body: ChatRequest) -> Any:
        return await _complete(state, body, "chat", StreamingResponse)

    @app.post("/v1/completions", response_model=None, dependencies=protected)
    async def completions(body: CompletionRequest) -> Any:
        return await _complete(state, body, "completions", StreamingResponse)

    @app.post("/v1/embeddings", dependencies=protected)
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        return await embed(state.pool.served.get(body.model), body)

    @app.post("/v1/feedback", dependencies=protected)
    async def feedback(body: FeedbackRequest) -> dict[str, Any]:
        return _record_feedback(state, body)

    return app


class FeedbackRequest(BaseModel):
    """Feedback on a completion this server gave: a rating, an edited answer, or both."""

    model_config = ConfigDict(extra="forbid")

    completion_id: str = Field(min_length=1)
    rating: int | None = Field(None, ge=1, le=5)
    edited: str | None = Field(None, min_length=1)
    tags: list[str] = Field(default_factory=list)


def _record_feedback(state: ServerState, body: FeedbackRequest) -> dict[str, Any]:
    """Append the feedback to the answering expert's feedback folder, with the prompt and answer it refers to."""
    from opensem.errors import OpensemError
    from opensem.feedback.records import append_feedback, parse_rows

    completion = state.recent.get(body.completion_id)
    if completion is None:
        raise ApiError(
            404,
            f"no recent completion {body.completion_id!r} on this server (it keeps the last {RECENT})",
            param="completion_id",
            code="completion_not_found",
        )
    served = state.pool.served.get(completion["model"])
    folder = served.release.feedback_dir if served is not None else None
    if folder is None:
        raise ApiError(
            400,
            f"{completion['model']!r} was not served from a manifest, so its feedback has no expert folder to go to",
            param="completion_id",
            code="feedback_unsupported",
        )
    row = {
        **body.model_dump(exclude={"completion_id"}),
        "prompt": completion["prompt"],
        "answer": completion["answer"],
        "model": completion["model"],
        "lot": completion["lot"],
        "completion_id": body.completion_id,
    }
    try:
        record = parse_rows([row], "feedback")[0]
        append_feedback(folder, [record])
    except OpensemError as exc:
        raise ApiError(400, exc.message, code="invalid_feedback") from None
    return {
        "object": "feedback",
        "id": record.id,
        "completion_id": body.completion_id,
        "model": completion["model"],
        "stored": True,
    }


def _model_card(state: ServerState, name: str) -> dict[str, Any]:
    served = state.pool.served[name]
    return {
        "id": name,
        "object": "model",
        "created": int(state.started),
        "owned_by": "opensem",
        **served.release.describe(),
    }


async def _complete(
    state: ServerState, body: ChatRequest | CompletionRequest, endpoint: str, streaming: Any
) -> Any:
    served = state.pool.acquire(body.model)
    if served is None:
        state.metrics.requests.labels(
            "unknown", endpoint, "404"
        ).inc()  # labels stay bounded whatever clients send
        raise ApiError(
            404,
            f"the model {body.model!r} does not exist; this server serves: {', '.join(state.pool.names())}",
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
    state.metrics.active.labels(body.model).inc()
    finished = False

    def finish() -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        state.pool.release(served)
        _account(state, outcome, served.release.lot)

    try:
        generation = generation_for(
            body, served, ids, state.config.default_max_tokens, state.config.max_tokens_limit
        )
        bridge = submit(served, generation)
        if not body.stream:
            answer = await whole(body, outcome, generation, bridge, state.config.request_timeout_s)
            state.remember(outcome, served.release.lot)
            _record_answer(state, outcome, served)
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
                state.remember(outcome, served.release.lot)
                _record_answer(state, outcome, served)
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


def _record_answer(state: ServerState, outcome: Outcome, served: Any) -> None:
    """With --record-answers, an answer given with sources joins the expert's answers log."""
    folder = served.release.feedback_dir
    if not (state.config.record_answers and outcome.sources and folder is not None):
        return
    from opensem.knowledge.answers import AnswerRecord, record_answer, source_records

    question = state.recent.get(outcome.id, {}).get("prompt", outcome.prompt)
    record = AnswerRecord(
        question=question,
        answer=outcome.text,
        sources=source_records(outcome.sources),
        model=outcome.model,
        lot=served.release.lot,
    )
    record_answer(folder.parent / "answers", record)


def _account(state: ServerState, outcome: Outcome, lot: str | None) -> None:
    m = state.metrics
    m.active.labels(outcome.model).dec()
    m.requests.labels(outcome.model, outcome.endpoint, str(outcome.status)).inc()
    seconds = time.monotonic() - outcome.started
    if outcome.status == 200:
        m.latency.labels(outcome.model, outcome.endpoint).observe(seconds)
        m.tokens.labels(outcome.model).inc(outcome.completion_tokens)
        m.prompt_tokens.labels(outcome.model).inc(outcome.prompt_tokens)
        if outcome.first_token_s is not None:
            m.first_token.labels(outcome.model).observe(outcome.first_token_s)
    record = {
        k: v
        for k, v in asdict(outcome).items()
        if k not in ("prompt", "text", "started", "sources")
    }
    if outcome.sources:  # which chunks, not their text (that is the documents')
        record["sources"] = [hit.chunk.id for hit in outcome.sources]
    record.update(
        event="request",
        lot=lot,
        latency_s=round(seconds, 4),
        first_token_s=None if outcome.first_token_s is None else round(outcome.first_token_s, 4),
    )
    if state.config.log_prompts:
        record.update(prompt=outcome.prompt, answer=outcome.text)
    log_request(state.log, record)
