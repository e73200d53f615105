"""The openai provider through the real openai client against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.forge.config import synthesis_config
from opensem.teachers import (
    BudgetExceeded,
    ChatRequest,
    MissingApiKey,
    TeacherError,
    provider_from_config,
    validate_json_object,
)
from opensem.teachers.base import InvalidAnswer
from tests.servers.openai_compatible import Content, OpenAICompatibleServer, Slow, Status

KEY = "sk-test-0123456789-secret"


def shaped(text: str) -> dict:
    """A validator wanting {"answer": str}, as a caller would write one."""
    data = validate_json_object(text)
    if not isinstance(data.get("answer"), str):
        raise InvalidAnswer('expected {"answer": "..."}')
    return data


def provider(
    server: OpenAICompatibleServer,
    cache: Path | None,
    monkeypatch: pytest.MonkeyPatch,
    **overrides: object,
):
    monkeypatch.setenv("OPENSEM_TEST_KEY", KEY)
    settings = {
        "provider": "openai",
        "model": "teacher-1",
        "base_url": server.url,
        "api_key_env": "OPENSEM_TEST_KEY",
        "timeout_s": 5.0,
        "max_retries": 3,
        "concurrency": 4,
        **overrides,
    }
    return provider_from_config(synthesis_config(**settings), cache, backoff_s=0.01)


def asks(count: int) -> list[ChatRequest]:
    return [
        ChatRequest(messages=[{"role": "user", "content": f"question {i}"}]) for i in range(count)
    ]


@pytest.fixture
def server(openai_server: OpenAICompatibleServer) -> OpenAICompatibleServer:
    openai_server.answer = lambda body: json.dumps(
        {"answer": body["messages"][-1]["content"].upper()}
    )
    return openai_server


def test_normal_answers_keep_request_order_and_report_usage(server, tmp_path, monkeypatch) -> None:
    results = provider(server, tmp_path, monkeypatch).complete_many(asks(12), validate=shaped)
    assert [r.value["answer"] for r in results] == [f"QUESTION {i}" for i in range(12)]
    assert server.count == 12 and all(
        r.requests == 1 and r.input_tokens > 0 and r.output_tokens > 0 for r in results
    )
    assert set(server.authorization) == {f"Bearer {KEY}"}
    assert {b["model"] for b in server.received} == {"teacher-1"}


def test_429_then_success_is_retried(server, tmp_path, monkeypatch) -> None:
    server.script("429", "429")
    [result] = provider(server, tmp_path, monkeypatch).complete_many(asks(1), validate=shaped)
    assert result.ok and result.requests == 3 and server.count == 3


def test_500_then_success_is_retried_and_a_persistent_500_fails_clearly(
    server, tmp_path, monkeypatch
) -> None:
    server.script("500")
    [result] = provider(server, tmp_path / "a", monkeypatch).complete_many(asks(1), validate=shaped)
    assert result.ok and result.requests == 2
    server.reset()
    server.default = "500"
    with pytest.raises(TeacherError, match="after 4 attempts: server error 500"):
        provider(server, tmp_path / "b", monkeypatch).complete_many(asks(1), validate=shaped)
    assert server.count == 4  # the first try and max_retries=3 retries


def test_timeout_is_retried(server, tmp_path, monkeypatch) -> None:
    server.script(Slow(3.0))
    [result] = provider(server, tmp_path, monkeypatch, timeout_s=0.5).complete_many(
        asks(1), validate=shaped
    )
    assert result.ok and result.requests == 2
    server.reset()
    server.default = Slow(3.0)
    with pytest.raises(TeacherError, match="no answer within 0.3 s"):
        provider(server, tmp_path / "b", monkeypatch, timeout_s=0.3, max_retries=1).complete_many(
            asks(1)
        )


def test_malformed_json_is_re_asked_with_the_error_then_skipped_and_counted(
    server, tmp_path, monkeypatch
) -> None:
    server.script(Content("Sure! Here is the JSON: {answer: nope"))
    [fixed] = provider(server, tmp_path / "a", monkeypatch).complete_many(asks(1), validate=shaped)
    assert fixed.ok and fixed.invalid == 1 and fixed.answers == 2
    retry = server.received[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "Sure! Here is the JSON: {answer: nope"}
    assert "not valid JSON" in retry[-1]["content"]
    server.reset()
    server.default = Content("not json at all")
    [skipped] = provider(server, tmp_path / "b", monkeypatch, max_retries=2).complete_many(
        asks(1), validate=shaped
    )
    assert not skipped.ok and skipped.invalid == 3 and "not valid JSON" in str(skipped.error)


def test_json_of_the_wrong_shape_is_invalid(server, tmp_path, monkeypatch) -> None:
    server.default = Content(json.dumps({"answers": ["a", "b"]}))
    results = provider(server, tmp_path, monkeypatch, max_retries=1).complete_many(
        asks(2), validate=shaped
    )
    assert [r.ok for r in results] == [False, False] and all(r.invalid == 2 for r in results)
    server.default = Content(json.dumps(["a list, not an object"]))
    [result] = provider(server, tmp_path / "b", monkeypatch, max_retries=0).complete_many(
        asks(1), validate=shaped
    )
    assert result.error == "expected a JSON object, got list"


def test_answers_are_cached_across_providers_and_a_rerun_sends_nothing(
    server, tmp_path, monkeypatch
) -> None:
    first = provider(server, tmp_path, monkeypatch).complete_many(asks(5), validate=shaped)
    again = provider(server, tmp_path, monkeypatch, concurrency=1).complete_many(
        asks(5), validate=shaped
    )
    assert server.count == 5 and [r.value for r in again] == [r.value for r in first]
    assert all(r.cache_hits == 1 and r.requests == 0 for r in again)
    assert provider(server, tmp_path, monkeypatch).plan(asks(7)).to_send == 2
    other = provider(server, tmp_path, monkeypatch, temperature=0.1).complete_many(
        asks(1), validate=shaped
    )
    assert (
        other[0].requests == 1 and server.count == 6
    )  # a different parameter is a different question


def test_cached_invalid_exchanges_replay_without_requests(server, tmp_path, monkeypatch) -> None:
    server.script(Content("oops"))
    provider(server, tmp_path, monkeypatch).complete_many(asks(1), validate=shaped)
    [replayed] = provider(server, tmp_path, monkeypatch).complete_many(asks(1), validate=shaped)
    assert server.count == 2 and replayed.ok and replayed.cache_hits == 2 and replayed.invalid == 1


def test_missing_key_fails_before_any_request_but_a_cached_rebuild_needs_none(
    server, tmp_path, monkeypatch
) -> None:
    provider(server, tmp_path, monkeypatch).complete_many(asks(2), validate=shaped)
    monkeypatch.delenv("OPENSEM_TEST_KEY")
    config = synthesis_config(
        provider="openai", model="teacher-1", base_url=server.url, api_key_env="OPENSEM_TEST_KEY"
    )
    cached = provider_from_config(config, tmp_path, backoff_s=0.01).complete_many(
        asks(2), validate=shaped
    )
    assert all(r.ok for r in cached)
    with pytest.raises(MissingApiKey, match="OPENSEM_TEST_KEY is not set") as info:
        provider_from_config(config, tmp_path, backoff_s=0.01).complete_many(
            asks(3), validate=shaped
        )
    assert "export OPENSEM_TEST_KEY" in info.value.hint and server.count == 2


def test_unreachable_endpoint_is_a_clear_error(tmp_path, monkeypatch) -> None:
    with OpenAICompatibleServer() as gone:
        url = gone.url
    monkeypatch.setenv("OPENSEM_TEST_KEY", KEY)
    config = synthesis_config(
        provider="openai", model="m", base_url=url, api_key_env="OPENSEM_TEST_KEY", max_retries=1
    )
    with pytest.raises(TeacherError, match="unreachable") as info:
        provider_from_config(config, tmp_path, backoff_s=0.01).complete_many(asks(3))
    assert url in info.value.message and "base_url" in info.value.hint


def test_refused_key_is_not_retried_and_never_echoed(server, tmp_path, monkeypatch) -> None:
    server.default = Status(401, message=f"Incorrect API key provided: {KEY}")
    with pytest.raises(TeacherError, match="refused the API key") as info:
        provider(server, tmp_path, monkeypatch).complete_many(asks(2))
    assert KEY not in info.value.render() and server.count <= 2
    server.reset()
    server.default = Status(400, message=f"bad request for key {KEY}")
    with pytest.raises(TeacherError, match=r"rejected the request \(400\)") as info:
        provider(server, tmp_path, monkeypatch).complete_many(asks(1))
    assert KEY not in info.value.render() and "***" in info.value.render()


def test_request_limit_stops_sending_and_keeps_what_was_paid(server, tmp_path, monkeypatch) -> None:
    with pytest.raises(BudgetExceeded, match="request budget reached: 3 requests sent"):
        provider(server, tmp_path, monkeypatch, concurrency=1).complete_many(
            asks(6), validate=shaped, request_limit=3
        )
    assert server.count == 3
    resumed = provider(server, tmp_path, monkeypatch).complete_many(asks(6), validate=shaped)
    assert sum(r.cache_hits for r in resumed) == 3 and server.count == 6


def test_model_override_per_request(server, tmp_path, monkeypatch) -> None:
    request = ChatRequest(messages=[{"role": "user", "content": "q"}], model="weak-1")
    provider(server, tmp_path, monkeypatch).complete_many([request, *asks(1)])
    assert sorted(b["model"] for b in server.received) == ["teacher-1", "weak-1"]


def test_identical_requests_in_one_batch_are_sent_once(server, tmp_path, monkeypatch) -> None:
    seen: list[str] = []
    results = provider(server, tmp_path, monkeypatch).complete_many(
        [*asks(2), *asks(2)], validate=shaped, on_result=lambda r: seen.append(r.text)
    )
    assert (
        server.count == 2
        and [r.value for r in results[:2]] == [r.value for r in results[2:]]
        and len(seen) == 4
    )
