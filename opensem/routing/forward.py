"""Forwarding a chat completion to an expert's endpoint through the official openai client.

The response is read raw (`with_streaming_response`), so a stream passes through byte for byte.
A refused connection, a timeout or a 5xx counts against that endpoint's circuit and the request
goes to the next replica; a 4xx is the request's own fault and comes back to the client as it is.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from opensem.routing.breaker import Endpoint, Replicas
from opensem.routing.registry import ExpertRegistry
from opensem.serving.openai_api import ApiError


@dataclass
class Upstream:
    """An answer being read from an endpoint; close() records how it went."""

    replicas: Replicas
    endpoint: Endpoint
    manager: Any  # the openai client's response context
    response: Any

    async def chunks(self) -> AsyncIterator[bytes]:
        """The upstream's body as it arrives."""
        async for chunk in self.response.iter_bytes():
            yield chunk

    async def body(self) -> bytes:
        """The upstream's whole body."""
        return bytes(await self.response.read())

    async def close(self, error: str | None = None) -> None:
        """Close the upstream response, counting a failure against its circuit when error is set."""
        try:
            await self.manager.__aexit__(None, None, None)
        finally:
            self.replicas.done(self.endpoint, error)


class Forwarder:
    def __init__(
        self,
        registry: ExpertRegistry,
        timeout_s: float,
        local_url: str | None = None,
        local_key: str | None = None,
    ) -> None:
        settings = registry.router
        self.key = os.environ.get(settings.expert_api_key_env or "", "") or "none"
        self.local_url, self.local_key, self.timeout_s = local_url, local_key, timeout_s
        self.replicas = {
            expert.name: Replicas.of(
                expert.endpoints() or ([local_url] if local_url else []),
                settings.failures_to_open,
                settings.open_for_s,
            )
            for expert in registry.experts
        }
        self.clients: dict[str, Any] = {}

    def client(self, url: str) -> Any:
        """One client per endpoint, created on the event loop that uses it."""
        if url not in self.clients:
            import openai

            key = self.local_key if url == self.local_url and self.local_key else self.key
            self.clients[url] = openai.AsyncOpenAI(
                base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=self.timeout_s
            )
        return self.clients[url]

    async def open(self, expert: str, body: dict[str, Any]) -> Upstream:
        """The first endpoint of the expert that takes the request; 503 when none does."""
        import openai

        replicas = self.replicas[expert]
        tried: set[str] = set()
        problems: list[str] = []
        while True:
            endpoint = replicas.take(tried)
            if endpoint is None:
                states = (
                    ", ".join(f"{e.url} {e.state}" for e in replicas.endpoints) or "no endpoints"
                )
                detail = f" ({'; '.join(problems)})" if problems else ""
                raise ApiError(
                    503,
                    f"expert {expert!r} has no endpoint answering now: {states}{detail}",
                    code="expert_unavailable",
                )
            tried.add(endpoint.url)
            manager = self.client(endpoint.url).chat.completions.with_streaming_response.create(
                **body
            )
            try:
                response = await manager.__aenter__()
            except openai.APIStatusError as exc:
                if exc.status_code >= 500:
                    replicas.done(endpoint, f"HTTP {exc.status_code}")
                    problems.append(f"{endpoint.url}: HTTP {exc.status_code}")
                    continue
                replicas.done(endpoint)  # the endpoint is fine; the request is not
                raise _api_error(exc) from None
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                replicas.done(endpoint, type(exc).__name__)
                problems.append(f"{endpoint.url}: {type(exc).__name__}")
                continue
            return Upstream(replicas, endpoint, manager, response)

    async def close(self) -> None:
        """Close every pooled HTTP client."""
        for client in self.clients.values():
            await client.close()


def _api_error(exc: Any) -> ApiError:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return ApiError(
        exc.status_code,
        str(error.get("message") or exc.message),
        param=error.get("param"),
        code=error.get("code"),
    )
