"""The wire as curl sees it: SSE framing, status codes and OpenAI-shaped error bodies, CORS,
health, metrics, and a server that keeps serving after each failure."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.serving.conftest import start_server
from tests.serving.releases import KEY

AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
CHAT = {
    "model": "alpha",
    "messages": [{"role": "user", "content": "Repot a cactus?"}],
    "max_tokens": 6,
    "temperature": 0,
}


def call(
    url: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    where = urlparse(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    connection.request(
        method,
        path,
        body=None
        if body is None
        else (body if isinstance(body, (str, bytes)) else json.dumps(body)),
        headers=AUTH if headers is None else headers,
    )
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def error_of(status: int, raw: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, raw
    error = json.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_sse_framing_of_a_streamed_chat(server) -> None:
    status, headers, raw = call(
        server.url,
        "POST",
        "/v1/chat/completions",
        {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    text = raw.decode()
    assert text.endswith("data: [DONE]\n\n") and not text.startswith("\n")
    events = text.split("\n\n")[:-1]
    assert all(event.startswith("data: ") and "\n" not in event for event in events)
    chunks = [json.loads(event[6:]) for event in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] in (
        "length",
        "stop",
    )
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 6
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_status_codes_and_error_bodies(server) -> None:
    url = server.url
    assert (
        error_of(*call(url, "POST", "/v1/chat/completions", "{not json")[::2], 400)["type"]
        == "invalid_request_error"
    )
    assert (
        error_of(*call(url, "POST", "/v1/chat/completions", {**CHAT, "messages": []})[::2], 400)[
            "param"
        ]
        == "messages"
    )
    assert (
        error_of(*call(url, "POST", "/v1/chat/completions", {**CHAT, "max_tokens": 0})[::2], 400)[
            "param"
        ]
        == "max_tokens"
    )
    assert (
        "at most 2048"
        in error_of(
            *call(url, "POST", "/v1/chat/completions", {**CHAT, "max_tokens": 99999})[::2], 400
        )["message"]
    )
    assert (
        "logprobs"
        in error_of(
            *call(url, "POST", "/v1/completions", {"model": "alpha", "prompt": "x", "logprobs": 2})[
                ::2
            ],
            400,
        )["message"]
    )
    missing = error_of(*call(url, "GET", "/v1/models", headers={})[::2], 401)
    assert missing["type"] == "authentication_error" and "Bearer" in missing["message"]
    assert (
        error_of(
            *call(url, "GET", "/v1/models", headers={"Authorization": "Bearer " + "y" * 40})[::2],
            401,
        )["code"]
        == "invalid_api_key"
    )
    assert (
        error_of(*call(url, "POST", "/v1/chat/completions", {**CHAT, "model": "nope"})[::2], 404)[
            "code"
        ]
        == "model_not_found"
    )
    assert error_of(*call(url, "GET", "/v1/models/nope")[::2], 404)["param"] == "model"
    assert error_of(*call(url, "GET", "/v2/anything")[::2], 404)["code"] == "not_found"
    assert call(url, "POST", "/v1/chat/completions", CHAT)[0] == 200  # still serving


def test_health_readiness_and_metrics(server) -> None:
    status, _, raw = call(server.url, "GET", "/health", headers={})
    health = json.loads(raw)
    assert (
        status == 200
        and health["status"] == "alive"
        and health["ready"]
        and health["backend"] == "transformers"
        and health["models"] == ["alpha", "beta"]
    )
    assert call(server.url, "GET", "/health/ready", headers={})[0] == 200
    call(server.url, "POST", "/v1/chat/completions", CHAT)
    call(server.url, "POST", "/v1/chat/completions", {**CHAT, "model": "made-up-by-a-client"})
    status, headers, raw = call(server.url, "GET", "/metrics", headers={})
    metrics = raw.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for name in (
        "inference_requests_total",
        "inference_latency_seconds_bucket",
        "inference_time_to_first_token_seconds_count",
        "tokens_generated_total",
        "prompt_tokens_total",
        "active_requests",
        "queued_requests",
        "inference_batches_total",
        "inference_requests_batched_total",
    ):
        assert f"\n{name}" in metrics, name
    assert 'inference_requests_total{endpoint="chat",model="alpha",status="200"}' in metrics
    assert (
        'inference_requests_total{endpoint="chat",model="unknown",status="404"}' in metrics
        and "made-up" not in metrics
    )  # bounded labels
    assert "gpu_memory_used_bytes" not in metrics  # no GPU on this machine


def test_request_log_has_timing_and_no_prompt(server, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="opensem.serve"):
        call(server.url, "POST", "/v1/chat/completions", CHAT)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    record = records[-1]
    assert (
        record["event"] == "request"
        and record["status"] == 200
        and record["model"] == "alpha"
        and record["latency_s"] > 0
    )
    assert (
        record["prompt_tokens"] > 0
        and record["first_token_s"] is not None
        and "prompt" not in record
        and "Repot" not in json.dumps(record)
    )


@pytest.fixture(scope="module")
def strict(releases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One request at a time, one waiting, one-second timeout, a rate limit, CORS for one origin."""
    server = start_server(
        [str(releases["alpha"])],
        tmp_path_factory.mktemp("cache"),
        max_batch_size=1,
        max_queue=1,
        request_timeout_s=1.0,
        rate_limit=600,
        cors_origins=["https://app.example"],
    )
    yield server
    server.close()


def test_timeout_is_504_and_the_generation_stops(strict) -> None:
    error = error_of(
        *call(strict.url, "POST", "/v1/chat/completions", {**CHAT, "max_tokens": 2000})[::2], 504
    )
    assert error["code"] == "timeout"  # the 1 s request timeout answered, not the 2,000 tokens
    status, _, raw = call(
        strict.url, "POST", "/v1/chat/completions", {**CHAT, "max_tokens": 2000, "stream": True}
    )
    assert (
        status == 200 and b'"code": "timeout"' in raw and raw.endswith(b"data: [DONE]\n\n")
    )  # a stream that started reports it in the stream
    assert call(strict.url, "POST", "/v1/chat/completions", CHAT)[0] == 200


def test_a_full_queue_is_503(strict) -> None:
    results: list[int] = []
    engine = strict.state.pool.served["alpha"].engine
    batches = engine.batches
    slow = threading.Thread(
        target=lambda: results.append(
            call(strict.url, "POST", "/v1/chat/completions", {**CHAT, "max_tokens": 2000})[0]
        )
    )
    slow.start()  # takes the one batch slot for a second
    deadline = time.monotonic() + 10
    while engine.batches == batches and time.monotonic() < deadline:
        time.sleep(0.01)
    waiting = threading.Thread(
        target=lambda: results.append(call(strict.url, "POST", "/v1/chat/completions", CHAT)[0])
    )
    waiting.start()  # fills the queue of one
    while engine.waiting() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    error = error_of(*call(strict.url, "POST", "/v1/chat/completions", CHAT)[::2], 503)
    assert error["code"] == "overloaded" and error["type"] == "server_overloaded"
    slow.join(), waiting.join()
    assert sorted(results) == [200, 504] or sorted(results) == [
        504,
        504,
    ]  # the waiting one may run out of time behind the slow one
    # A request that timed out while waiting leaves the queue
    while engine.waiting() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert call(strict.url, "POST", "/v1/chat/completions", CHAT)[0] == 200


def test_out_of_memory_fails_the_batch_with_503_and_serving_goes_on(
    strict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    engine = strict.state.pool.served["alpha"].engine
    forward = type(engine.model).forward
    calls = {"n": 0}

    def out_of_memory_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(engine.model), "forward", out_of_memory_once)
    error = error_of(*call(strict.url, "POST", "/v1/chat/completions", CHAT)[::2], 503)
    assert "ran out of memory" in error["message"]
    assert call(strict.url, "POST", "/v1/chat/completions", CHAT)[0] == 200


def test_rate_limit_is_429_with_retry_after(strict) -> None:
    from opensem.serving.ops import RateLimiter

    strict.state.limiter = RateLimiter(2)  # two a minute, for this test
    try:
        assert (
            call(strict.url, "GET", "/v1/models")[0] == 200
            and call(strict.url, "GET", "/v1/models")[0] == 200
        )
        status, headers, raw = call(strict.url, "GET", "/v1/models")
        assert (
            error_of(status, raw, 429)["type"] == "rate_limit_error"
            and int(headers["retry-after"]) >= 1
        )
    finally:
        strict.state.limiter = RateLimiter(strict.config.rate_limit)


def test_cors_preflight_for_the_allowed_origin_only(strict) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    status, headers, _ = call(strict.url, "OPTIONS", "/v1/chat/completions", headers=preflight)
    assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"
    status, headers, _ = call(
        strict.url,
        "OPTIONS",
        "/v1/chat/completions",
        headers={**preflight, "Origin": "https://evil.example"},
    )
    assert status == 400 and "access-control-allow-origin" not in headers
