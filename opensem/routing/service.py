"""The router's HTTP API: /route, /generate, /experts, /v1/models, /v1/chat/completions (model
`auto` routes; an expert's name goes straight to it), /health and /metrics.

A query is routed on its last user message. When no expert is confident enough the fallback
expert answers, or, without one, the request gets 404 with the scores. Answers come from the
expert's endpoints (forward.py) with the chosen expert in the `x-opensem-expert` header (and a
`routing` object in whole answers); streams pass through as they are.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from opensem.routing.classifiers.base import Classifier, Decision
from opensem.routing.config import RouteServeConfig
from opensem.routing.forward import Forwarder
from opensem.routing.registry import ExpertRegistry, describe
from opensem.serving.http import common_app
from opensem.serving.openai_api import ApiError, ChatMessage, ChatRequest, Settings, Text
from opensem.serving.ops import RateLimiter
from opensem.settings.fields import pick

AUTO = "auto"


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str | None = Field(None, min_length=1)
    messages: list[ChatMessage] | None = Field(None, min_length=1)

    def text(self) -> str:
        """The text to route: the query, or the last user message."""
        if self.query:
            return self.query
        users = [m.content for m in self.messages or [] if m.role == "user"]
        if not users:
            raise ApiError(400, "give a query, or messages with a user message", param="query")
        return users[-1]


class GenerateRequest(
    pick(Settings, "max_tokens", "temperature", "top_p", "seed", name="GenerateSampling")  # type: ignore[misc]
):
    """The sampling fields are the model server's own (the same bounds: a seed torch cannot take is a 400 here too)."""

    model_config = ConfigDict(extra="forbid")

    prompt: Text = Field(min_length=1)


class RouterMetrics:
    def __init__(self, state: "RouterState") -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "routing_decisions_total",
            "Queries routed, by expert and by what decided.",
            ["expert", "decided_by"],
            registry=self.registry,
        )
        self.requests = Counter(
            "router_requests_total",
            "Router requests answered, by endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.classify = Histogram(
            "routing_classification_seconds",
            "Seconds to classify one query.",
            ["classifier"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
            registry=self.registry,
        )
        self.registry.register(_ExpertCollector(state))


class _ExpertCollector:
    def __init__(self, state: "RouterState") -> None:
        self.state = state

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            "expert_up", "1 while some endpoint of the expert may take requests.", labels=["expert"]
        )
        busy = GaugeMetricFamily(
            "expert_in_flight", "Requests being answered by the expert now.", labels=["expert"]
        )
        for name, replicas in self.state.forwarder.replicas.items():
            up.add_metric([name], 1.0 if replicas.up() else 0.0)
            busy.add_metric([name], float(replicas.in_flight()))
        yield up
        yield busy


@dataclass
class RouterState:
    registry: ExpertRegistry
    classifier: Classifier
    forwarder: Forwarder
    config: RouteServeConfig
    key: str | None
    ready: bool = True
    metrics: RouterMetrics = field(init=False)
    limiter: RateLimiter = field(init=False)
    routed: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = RouterMetrics(self)
        self.limiter = RateLimiter(self.config.rate_limit)

    def route(self, text: str) -> tuple[str, Decision, str]:
        """(expert, decision, decided_by): the classifier's expert, else the fallback, else 404."""
        started = time.perf_counter()
        decision = self.classifier.classify(text)
        self.metrics.classify.labels(self.classifier.name).observe(time.perf_counter() - started)
        expert, decided_by = decision.expert, decision.classifier or self.classifier.name
        if expert is None and self.registry.router.fallback:
            expert, decided_by = self.registry.router.fallback, "fallback"
        if expert is None:
            self.metrics.decisions.labels("none", decided_by).inc()
            best = max(decision.scores, key=decision.scores.__getitem__, default="-")
            raise ApiError(
                404,
                f"no expert is confident enough for this query (best: {best} at {decision.confidence:.2f}) and the "
                "router has no fallback",
                param="messages",
                code="no_expert",
            )
        self.metrics.decisions.labels(expert, decided_by).inc()
        self.routed[expert] = self.routed.get(expert, 0) + 1
        return expert, decision, decided_by


def create_router_app(state: RouterState) -> Any:
    """The router's FastAPI app: routes, health, metrics and the OpenAI endpoints."""
    app, protected = common_app(
        "opensem router",
        state,
        on_error=lambda path, status: state.metrics.requests.labels(path, str(status)).inc(),
    )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        experts = {name: replicas.up() for name, replicas in state.forwarder.replicas.items()}
        return {
            "status": "alive",
            "ready": state.ready,
            "classifier": state.classifier.name,
            "experts": experts,
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/experts", dependencies=protected)
    async def experts() -> dict[str, Any]:
        total = sum(state.routed.values()) or 1
        listed = []
        for expert in state.registry.experts:
            replicas = state.forwarder.replicas[expert.name]
            usage = {
                "routed": state.routed.get(expert.name, 0),
                "share": round(state.routed.get(expert.name, 0) / total, 4),
                "in_flight": replicas.in_flight(),
            }
            listed.append(
                {
                    **describe(expert),
                    "healthy": replicas.up(),
                    "endpoints": [e.health() for e in replicas.endpoints],
                    "utilization": usage,
                }
            )
        return {
            "classifier": state.classifier.name,
            "fallback": state.registry.router.fallback,
            "experts": listed,
        }

    @app.post("/route", dependencies=protected)
    async def route(body: RouteRequest) -> dict[str, Any]:
        expert, decision, decided_by = state.route(body.text())
        state.metrics.requests.labels("/route", "200").inc()
        return {
            "expert": expert,
            "decided_by": decided_by,
            **{k: v for k, v in decision.as_dict().items() if k != "expert"},
        }

    @app.get("/v1/models", dependencies=protected)
    async def models() -> dict[str, Any]:
        cards: list[dict[str, Any]] = [
            {
                "id": AUTO,
                "object": "model",
                "owned_by": "opensem-router",
                "description": "routes each query to the best expert",
            }
        ]
        cards += [
            {
                "id": e.name,
                "object": "model",
                "owned_by": "opensem",
                "lot": e.lot,
                "tag": e.tag,
                "description": e.description,
            }
            for e in state.registry.experts
        ]
        return {"object": "list", "data": cards}

    @app.post("/v1/chat/completions", response_model=None, dependencies=protected)
    async def chat(body: ChatRequest) -> Any:
        if body.model == AUTO:
            expert, decision, decided_by = state.route(RouteRequest(messages=body.messages).text())
        elif state.registry.get(body.model) is not None:
            expert, decision, decided_by = (
                body.model,
                Decision(body.model, 1.0, {}, None, "direct"),
                "direct",
            )
            state.metrics.decisions.labels(expert, decided_by).inc()
        else:
            raise ApiError(
                404,
                f"the model {body.model!r} does not exist; this router serves: auto, "
                f"{', '.join(e.name for e in state.registry.experts)}",
                param="model",
                code="model_not_found",
            )
        return await _forward(
            state,
            expert,
            decision,
            decided_by,
            body.model_dump(exclude_none=True) | {"model": expert},
            "/v1/chat/completions",
        )

    @app.post("/generate", response_model=None, dependencies=protected)
    async def generate(body: GenerateRequest) -> Any:
        expert, decision, decided_by = state.route(body.prompt)
        chat_body = {
            "model": expert,
            "messages": [{"role": "user", "content": body.prompt}],
            **body.model_dump(exclude_none=True, exclude={"prompt"}),
        }
        answer = await _forward(state, expert, decision, decided_by, chat_body, "/generate")
        choice = answer["choices"][0]
        return {
            "expert": expert,
            "confidence": answer["routing"]["confidence"],
            "decided_by": decided_by,
            "text": choice["message"]["content"],
            "finish_reason": choice["finish_reason"],
            "usage": answer.get("usage"),
        }

    return app


async def _forward(
    state: RouterState,
    expert: str,
    decision: Decision,
    decided_by: str,
    body: dict[str, Any],
    path: str,
) -> Any:
    import json

    routing = {
        "expert": expert,
        "confidence": round(decision.confidence, 4),
        "decided_by": decided_by,
        "runner_up": decision.runner_up,
    }
    headers = {"x-opensem-expert": expert, "x-opensem-confidence": f"{decision.confidence:.4f}"}
    upstream = await state.forwarder.open(expert, body)
    if not body.get("stream"):
        try:
            answer = json.loads(await upstream.body())
        except Exception as exc:
            await upstream.close(f"unreadable answer: {exc}")
            raise ApiError(
                502, f"expert {expert!r} sent an unreadable answer", code="bad_gateway"
            ) from None
        await upstream.close()
        state.metrics.requests.labels(path, "200").inc()
        answer["routing"] = routing
        return answer if path == "/generate" else JSONResponse(answer, headers=headers)

    async def passthrough() -> Any:
        error = None
        try:
            async for chunk in upstream.chunks():
                yield chunk
        except Exception as exc:  # the expert went away mid-stream: the client sees the stream end
            error = type(exc).__name__
        finally:
            await upstream.close(error)
            state.metrics.requests.labels(path, "200" if error is None else "502").inc()

    return StreamingResponse(
        passthrough(),
        media_type="text/event-stream",
        headers={**headers, "Cache-Control": "no-cache"},
    )
