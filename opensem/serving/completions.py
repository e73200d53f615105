"""Answering one chat completion or completion: on the engine of its model, whole or streamed.

The prompt is rendered with the release's own tokenizer and chat template, the same rendering
evaluation used (opensem.training.generation.prompt_ids), so a served expert sees exactly what
it was trained and judged on. Streaming is Server-Sent Events: a role chunk, text deltas, a final
chunk with the finish reason (and usage, when asked), then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from opensem.serving.openai_api import ApiError, ChatRequest, CompletionRequest, usage
from opensem.serving.pool import Served
from opensem.serving.request import Generation, Overloaded


@dataclass
class Outcome:
    """What one request cost and produced, for metrics, the request log and feedback."""

    id: str
    model: str
    endpoint: str
    prompt: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    text: str = ""
    finish_reason: str = ""
    status: int = 200
    started: float = field(default_factory=time.monotonic)
    first_token_s: float | None = None
    sources: list[Any] = field(default_factory=list)  # knowledge base hits the answer was given


def prompt_of(
    request: ChatRequest | CompletionRequest, served: Served, limit: int
) -> tuple[list[int], str, list[Any]]:
    """Token ids of the prompt (keeping its end when too long), its text for logs and feedback
    (the chat as sent), and the knowledge base's sources put before the question, if any."""
    from opensem.data.persona import with_system
    from opensem.knowledge.answers import with_sources
    from opensem.training.generation import prompt_ids, tail_ids

    if isinstance(request, ChatRequest):
        messages = with_system([m.model_dump() for m in request.messages], served.system)
        hits = []
        if served.knowledge is not None and messages[-1]["role"] == "user":
            hits = served.knowledge.find(messages[-1]["content"])
        asked = with_sources(messages, hits)
        return (
            prompt_ids(asked, served.tokenizer, limit),
            json.dumps(messages, ensure_ascii=False),
            hits,
        )
    text = request.text()
    return tail_ids(text, served.tokenizer, limit), text, []


def generation_for(
    request: ChatRequest | CompletionRequest,
    served: Served,
    prompt_ids: list[int],
    default_tokens: int,
    limit_tokens: int,
) -> Generation:
    """The generation a request asks for; ApiError when it asks more tokens than the model has room for."""
    asked = request.asked_tokens()
    if asked is not None and asked > limit_tokens:
        raise ApiError(
            400,
            f"max_tokens is {asked}; this server gives at most {limit_tokens}",
            param="max_tokens",
        )
    return Generation(
        prompt_ids,
        served.adapter,
        asked or default_tokens,
        request.temperature,
        request.top_p,
        request.seed,
        request.stops(),
    )


class Bridge:
    """Engine-thread callbacks into the request's event loop: deltas to a queue, completion to a future."""

    def __init__(self, generation: Generation) -> None:
        self.loop = asyncio.get_running_loop()
        self.deltas: asyncio.Queue[str | None] = asyncio.Queue()
        self.done: asyncio.Future[None] = self.loop.create_future()
        generation.on_delta = lambda delta: self.loop.call_soon_threadsafe(
            self.deltas.put_nowait, delta
        )
        generation.on_done = lambda: self.loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        self.deltas.put_nowait(None)


def submit(served: Served, generation: Generation) -> Bridge:
    """Hand the generation to the engine, bridged back to the event loop."""
    bridge = Bridge(generation)
    try:
        served.engine.submit(generation)
    except Overloaded as exc:
        raise ApiError(
            503, f"server overloaded: {exc}; try again shortly", code="overloaded"
        ) from None
    return bridge


def failure(generation: Generation) -> ApiError:
    """The API error for a failed generation (503 when overloaded, else 500)."""
    if isinstance(generation.error, Overloaded):
        return ApiError(503, f"server overloaded: {generation.error}", code="overloaded")
    return ApiError(
        500, f"generation failed: {type(generation.error).__name__}: {generation.error}"
    )


async def whole(
    request: ChatRequest | CompletionRequest,
    outcome: Outcome,
    generation: Generation,
    bridge: Bridge,
    timeout_s: float,
) -> dict[str, Any]:
    """The complete answer, or 504 (the generation is cancelled) when it takes longer than timeout_s."""
    try:
        await asyncio.wait_for(
            asyncio.shield(bridge.done),
            timeout=max(0.0, timeout_s - (time.monotonic() - outcome.started)),
        )
    except asyncio.TimeoutError:
        generation.cancelled.set()
        raise ApiError(504, f"no answer within {timeout_s:g} s", code="timeout") from None
    if generation.error is not None:
        raise failure(generation)
    record(outcome, generation)
    created = int(time.time())
    if isinstance(request, ChatRequest):
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": outcome.text},
            "finish_reason": generation.finish_reason,
            "logprobs": None,
        }
        return {
            "id": outcome.id,
            "object": "chat.completion",
            "created": created,
            "model": outcome.model,
            "choices": [choice],
            "usage": usage(outcome.prompt_tokens, outcome.completion_tokens),
            **sources_field(outcome),
        }
    choice = {
        "index": 0,
        "text": generation.text,
        "finish_reason": generation.finish_reason,
        "logprobs": None,
    }
    return {
        "id": outcome.id,
        "object": "text_completion",
        "created": created,
        "model": outcome.model,
        "choices": [choice],
        "usage": usage(outcome.prompt_tokens, outcome.completion_tokens),
    }


async def streamed(
    request: ChatRequest | CompletionRequest,
    outcome: Outcome,
    generation: Generation,
    bridge: Bridge,
    timeout_s: float,
) -> AsyncIterator[bytes]:
    """Server-Sent Events of the answer as it is generated."""
    chat = isinstance(request, ChatRequest)
    created = int(time.time())

    def event(
        delta: str | None = None,
        finish: str | None = None,
        role: bool = False,
        usage_only: bool = False,
    ) -> bytes:
        if chat:
            body = (
                {"role": "assistant", "content": ""}
                if role
                else ({"content": delta} if delta is not None else {})
            )
            choices = (
                []
                if usage_only
                else [{"index": 0, "delta": body, "finish_reason": finish, "logprobs": None}]
            )
            chunk: dict[str, Any] = {
                "id": outcome.id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": outcome.model,
                "choices": choices,
            }
        else:
            choices = (
                []
                if usage_only
                else [{"index": 0, "text": delta or "", "finish_reason": finish, "logprobs": None}]
            )
            chunk = {
                "id": outcome.id,
                "object": "text_completion",
                "created": created,
                "model": outcome.model,
                "choices": choices,
            }
        if usage_only:
            chunk["usage"] = usage(outcome.prompt_tokens, outcome.completion_tokens)
        if finish is not None:
            chunk.update(sources_field(outcome))
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    if chat:
        yield event(role=True)
    deadline = outcome.started + timeout_s
    while True:
        try:
            delta = await asyncio.wait_for(
                bridge.deltas.get(), timeout=max(0.0, deadline - time.monotonic())
            )
        except asyncio.TimeoutError:
            generation.cancelled.set()
            outcome.status = 504
            late = ApiError(504, f"no answer within {timeout_s:g} s", code="timeout")
            yield f"data: {json.dumps(late.body())}\n\n".encode()
            break
        text = delta or ""
        # Deltas that piled up go out as one event
        while delta is not None and not bridge.deltas.empty():
            delta = bridge.deltas.get_nowait()
            text += delta or ""
        if text:
            yield event(delta=text)
        if delta is None:
            if generation.error is not None:
                error = failure(generation)
                outcome.status = error.status
                yield f"data: {json.dumps(error.body())}\n\n".encode()
                break
            record(outcome, generation)
            if outcome.sources:
                yield event(delta=outcome.text[len(generation.text) :])
            yield event(finish=generation.finish_reason)
            if request.usage_in_stream():
                yield event(usage_only=True)
            break
    yield b"data: [DONE]\n\n"


def record(outcome: Outcome, generation: Generation) -> None:
    """Copy what the generation produced into the request's outcome (metrics, feedback)."""
    outcome.text, outcome.finish_reason, outcome.completion_tokens = (
        generation.text,
        generation.finish_reason,
        generation.completion_tokens,
    )
    if generation.first_token_at is not None:
        outcome.first_token_s = generation.first_token_at - outcome.started
    if outcome.sources:  # the answer's text says where it came from
        from opensem.knowledge.answers import sources_line

        outcome.text = f"{outcome.text}\n\n{sources_line(outcome.sources)}"


def sources_field(outcome: Outcome) -> dict[str, Any]:
    """The response's `sources` (OpenAI clients ignore it), for a release with a knowledge base."""
    return {"sources": [hit.as_json() for hit in outcome.sources]} if outcome.sources else {}


def new_id(endpoint: str) -> str:
    """A fresh response id in OpenAI's form."""
    return f"{'chatcmpl' if endpoint == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}"
