"""The router as clients use it: two `opensem serve` servers on 127.0.0.1 behind it (one serving
alpha and beta, one beta), a dead replica, the official openai client and raw HTTP."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from opensem.routing.config import RouteServeConfig
from opensem.routing.registry import ExpertRegistry
from opensem.routing.server import RouterServer
from tests.serving.conftest import start_server
from tests.serving.releases import KEY
from tests.serving.test_http import call

FERN = [{"role": "user", "content": "Why are the fronds of my fern turning brown?"}]


@pytest.fixture(scope="module", autouse=True)
def api_key() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENSEM_API_KEY", KEY)
        yield


def dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there once closed


@pytest.fixture(scope="module")
def experts(
    releases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any]]:
    both = start_server(
        [str(releases["alpha"]), str(releases["beta"])], tmp_path_factory.mktemp("c1")
    )
    beta = start_server([str(releases["beta"])], tmp_path_factory.mktemp("c2"))
    yield both, beta
    both.close()
    beta.close()


def registry(both: Any, beta: Any, **router: Any) -> ExpertRegistry:
    return ExpertRegistry.model_validate(
        {
            "router": {
                "classifier": {"type": "keyword"},
                "failures_to_open": 2,
                "open_for_s": 60,
                "train_on_golden": False,
                **router,
            },
            "experts": [
                {
                    "name": "alpha",
                    "model_path": "unused",
                    "keywords": ["fern", "plant", "soil"],
                    "endpoint": both.url,
                },
                {
                    "name": "beta",
                    "model_path": "unused",
                    "keywords": ["chain", "brake", "tyre"],
                    "endpoint": both.url,
                    "replicas": [beta.url, dead_url()],
                },
            ],
        }
    )


@pytest.fixture(scope="module")
def router(
    experts: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RouterServer]:
    server = RouterServer(
        registry(*experts), Path("."), RouteServeConfig(port=0), tmp_path_factory.mktemp("cache")
    )
    server.start()
    yield server
    server.close()


def test_auto_routes_and_answers_exactly_as_the_expert_does(
    router: RouterServer, experts: tuple[Any, Any]
) -> None:
    client = openai.OpenAI(base_url=router.url + "/v1", api_key=KEY, max_retries=0)
    direct = openai.OpenAI(base_url=experts[0].url + "/v1", api_key=KEY, max_retries=0)
    expected = direct.chat.completions.create(
        model="alpha", messages=FERN, max_tokens=12, temperature=0
    )
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=FERN, max_tokens=12, temperature=0
    )
    answer = raw.parse()
    assert (
        raw.headers["x-opensem-expert"] == "alpha"
        and float(raw.headers["x-opensem-confidence"]) > 0.4
    )
    assert (
        answer.model == "alpha"
        and answer.choices[0].message.content == expected.choices[0].message.content
    )
    assert answer.model_extra["routing"]["decided_by"] == "keyword"
    stream = client.chat.completions.create(
        model="auto",
        messages=FERN,
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == expected.choices[0].message.content
    )
    assert chunks[-1].usage.completion_tokens == expected.usage.completion_tokens
    named = client.chat.completions.create(
        model="beta", messages=FERN, max_tokens=4, temperature=0
    )  # a name goes straight to that expert
    assert named.model == "beta" and named.model_extra["routing"]["decided_by"] == "direct"
    assert [m.id for m in client.models.list().data] == ["auto", "alpha", "beta"]


def test_route_generate_and_experts(router: RouterServer) -> None:
    status, _, raw = call(router.url, "POST", "/route", {"query": "my bike chain skips"})
    decision = json.loads(raw)
    assert (
        status == 200
        and decision["expert"] == "beta"
        and decision["runner_up"] == "alpha"
        and decision["scores"]["beta"] == 1.0
    )
    status, _, raw = call(
        router.url,
        "POST",
        "/generate",
        {"prompt": "how wet should fern soil be", "max_tokens": 5, "temperature": 0},
    )
    generated = json.loads(raw)
    assert (
        status == 200
        and generated["expert"] == "alpha"
        and generated["usage"]["completion_tokens"] <= 5
        and isinstance(generated["text"], str)
    )
    status, _, raw = call(router.url, "GET", "/experts")
    listed = {e["name"]: e for e in json.loads(raw)["experts"]}
    assert (
        status == 200
        and listed["alpha"]["healthy"]
        and listed["alpha"]["utilization"]["routed"] >= 1
    )
    assert [e["url"] for e in listed["beta"]["endpoints"]][:2] == [
        e.url for e in router.state.forwarder.replicas["beta"].endpoints
    ][:2]


def test_a_dead_replica_is_skipped_then_cut_off_and_replicas_share_the_load(
    router: RouterServer,
) -> None:
    client = openai.OpenAI(base_url=router.url + "/v1", api_key=KEY, max_retries=0)
    for _ in range(8):  # every request answered, whichever replica the turn falls on
        assert client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "brake rub"}], max_tokens=2
        ).choices
    live_one, live_two, dead = router.state.forwarder.replicas["beta"].endpoints
    assert (
        dead.state == "open" and dead.errors == 2 and dead.last_error == "APIConnectionError"
    )  # cut off after two failures
    assert (
        live_one.requests > 0 and live_two.requests > 0 and live_one.errors == live_two.errors == 0
    )
    status, _, raw = call(router.url, "GET", "/metrics", headers={})
    metrics = raw.decode()
    assert (
        'routing_decisions_total{decided_by="keyword",expert="beta"}' in metrics
        and 'expert_up{expert="beta"} 1.0' in metrics
    )


def test_errors_no_expert_upstream_refusals_and_keys(router: RouterServer) -> None:
    status, _, raw = call(
        router.url,
        "POST",
        "/v1/chat/completions",
        {"model": "auto", "messages": [{"role": "user", "content": "capital of France?"}]},
    )
    assert status == 404 and json.loads(raw)["error"]["code"] == "no_expert"
    status, _, raw = call(
        router.url,
        "POST",
        "/v1/chat/completions",
        {"model": "auto", "messages": FERN, "max_tokens": 99999},
    )
    assert (
        status == 400 and "at most 2048" in json.loads(raw)["error"]["message"]
    )  # the expert's refusal, passed on
    status, _, raw = call(
        router.url, "POST", "/v1/chat/completions", {"model": "gamma", "messages": FERN}
    )
    assert status == 404 and json.loads(raw)["error"]["code"] == "model_not_found"
    assert (
        call(
            router.url,
            "POST",
            "/route",
            {"nothing": 1},
            headers={"Content-Type": "application/json"},
        )[0]
        == 401
    )  # the key is checked before the body
    assert call(router.url, "POST", "/route", {"nothing": 1})[0] == 400
    assert call(router.url, "POST", "/route", {"query": "fern"})[0] == 200  # and it keeps serving


def test_fallback_answers_what_no_expert_claims_and_the_router_can_serve_experts_itself(
    experts: tuple[Any, Any], releases: dict[str, Path], tmp_path: Path
) -> None:
    local = registry(*experts).model_dump()
    local["experts"].append(
        {"name": "local", "model_path": str(releases["alpha"]), "keywords": ["cactus"]}
    )  # no endpoint: served in-process
    local["router"]["fallback"] = "local"
    server = RouterServer(
        ExpertRegistry.model_validate(local), tmp_path, RouteServeConfig(port=0), tmp_path / "cache"
    )
    try:
        server.start()
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "capital of France?"}], max_tokens=3
        )
        assert (
            raw.headers["x-opensem-expert"] == "local"
            and raw.parse().model_extra["routing"]["decided_by"] == "fallback"
        )
        assert (
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "water a cactus?"}],
                max_tokens=3,
            ).model
            == "local"
        )
        assert (
            server.local is not None
            and server.forwarder.replicas["local"].endpoints[0].url == server.local.url
        )
    finally:
        server.close()
