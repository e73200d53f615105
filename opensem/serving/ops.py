"""Operating a server: Prometheus metrics, API keys, per-key rate limits and request logs.

Metric names follow the LargeForgeAI SRS: inference_requests_total, inference_latency_seconds,
tokens_generated_total, active_requests and, where there is a GPU, gpu_memory_used_bytes. Each
server has a registry of its own (tests run several in one process). Request logs are one JSON
object per request, with timing and token counts, and without prompt text unless asked for.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from opensem.errors import Location, UsageError
from opensem.serving.config import MIN_KEY_CHARS, HttpConfig
from opensem.serving.openai_api import ApiError

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self, engines: Callable[[], list[Any]]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "inference_requests_total",
            "Requests answered, by model, endpoint and HTTP status.",
            ["model", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "inference_latency_seconds",
            "Seconds from request to last token.",
            ["model", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "inference_time_to_first_token_seconds",
            "Seconds from request to first token.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "tokens_generated_total", "Completion tokens generated.", ["model"], registry=r
        )
        self.prompt_tokens = Counter(
            "prompt_tokens_total", "Prompt tokens read.", ["model"], registry=r
        )
        self.active = Gauge(
            "active_requests", "Requests being answered now.", ["model"], registry=r
        )
        r.register(_EngineCollector(engines))
        self.extra: dict[str, Any] = {}
        if _cuda():
            import torch

            Gauge(
                "gpu_memory_used_bytes", "GPU memory allocated by this server.", registry=r
            ).set_function(lambda: float(torch.cuda.memory_allocated()))

    def counter(self, name: str, documentation: str, labels: list[str]) -> Any:
        """A further counter on this server's registry (the router's routing decisions)."""
        from prometheus_client import Counter

        if name not in self.extra:
            self.extra[name] = Counter(name, documentation, labels, registry=self.registry)
        return self.extra[name]

    def render(self) -> tuple[bytes, str]:
        """The Prometheus exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _EngineCollector:
    """What the engines count themselves: requests waiting, batches run and requests batched."""

    def __init__(self, engines: Callable[[], list[Any]]) -> None:
        self.engines = engines

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        engines = self.engines()
        yield GaugeMetricFamily(
            "queued_requests",
            "Requests waiting for a batch.",
            value=sum(e.waiting() for e in engines),
        )
        yield CounterMetricFamily(
            "inference_batches",
            "Batches decoded together (requests_batched / batches = mean batch size).",
            value=sum(getattr(e, "batches", 0) for e in engines),
        )
        yield CounterMetricFamily(
            "inference_requests_batched",
            "Requests that went through a batch.",
            value=sum(getattr(e, "batched", 0) for e in engines),
        )


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def api_key(config: HttpConfig) -> str | None:
    """The key clients must send, read from its environment variable; refused when too short."""
    if config.insecure_no_auth:
        return None
    name = str(config.api_key_env)
    key = os.environ.get(name, "")
    if len(key) < MIN_KEY_CHARS:
        what = "is not set" if not key else f"holds {len(key)} characters"
        raise UsageError(
            f"the API key variable {name} {what}; a key needs at least {MIN_KEY_CHARS} characters",
            Location(key=f"${name}"),
            hint=(
                f"export {name}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
                "or --insecure-no-auth on a loopback address"
            ),
        )
    return key


def bearer(authorization: str | None) -> str:
    """The key of an `Authorization: Bearer <key>` header, or 401."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(
            401, "missing API key: send it as 'Authorization: Bearer <key>'", code="invalid_api_key"
        )
    return given


def check_key(expected: str | None, authorization: str | None) -> str:
    """The caller's key (for rate limits), or 401."""
    if expected is None:
        return "anonymous"
    given = bearer(authorization)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "incorrect API key", code="invalid_api_key")
    return given


class RateLimiter:
    """A token bucket per key: `per_minute` requests a minute, in bursts of up to that many."""

    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self.lock = threading.Lock()

    def take(self, key: str) -> None:
        """Count a request for key; ApiError 429 past the per-minute limit."""
        if self.per_minute is None:
            return
        now, rate = time.monotonic(), self.per_minute / 60.0
        with self.lock:
            tokens, then = self.buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - then) * rate)
            if tokens < 1.0:
                wait = (1.0 - tokens) / rate
                self.buckets[key] = (tokens, now)
                raise ApiError(
                    429,
                    f"rate limit of {self.per_minute} requests per minute reached",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": f"{wait:.0f}" if wait >= 1 else "1"},
                )
            self.buckets[key] = (tokens - 1.0, now)


def log_request(log: logging.Logger, record: dict[str, Any]) -> None:
    """One JSON line per request (timing, tokens, status; prompts only when the server was asked to)."""
    log.info("%s", json.dumps(record, sort_keys=True, ensure_ascii=False))


def uvicorn_server(app: Any, host: str, port: int) -> Any:
    """A quiet uvicorn server for an app: warnings only, no access log (requests are logged here)."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )


def serve_in_thread(server: Any, name: str) -> int:
    """Run a uvicorn server from a daemon thread; the port it listens on, once it does (tests, benchmarks)."""
    threading.Thread(target=server.run, name=name, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return int(server.servers[0].sockets[0].getsockname()[1])
