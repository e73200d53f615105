"""The LLM judge through the real openai client against the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opensem.evaluation.config import judge_config
from opensem.evaluation.judge import DEFAULT_RUBRIC, Judge, parse_verdict, render_rubric
from opensem.teachers import InvalidAnswer, MissingApiKey
from tests.servers.openai_compatible import Content, OpenAICompatibleServer

TRIPLES = [
    ("How fine should I grind?", "Fine, like table salt.", "Fine, like table salt."),
    ("What ratio?", "About 1 to 2.", "Use a lot of milk."),
    ("Water temperature?", "Around 93 degrees.", "Around 93 degrees Celsius."),
]


def grade(body: dict[str, Any]) -> str:
    """A judge that reads the rendered rubric: 5 when the graded answer repeats the reference, else 2."""
    prompt = body["messages"][0]["content"]
    reference = prompt.split("Reference answer:\n", 1)[1].split("\n\n", 1)[0]
    answer = prompt.split("Answer to grade:\n", 1)[1].split("\n\n", 1)[0]
    return json.dumps(
        {"score": 5 if answer == reference else 2, "reason": "compared with the reference"}
    )


def judge(
    server: OpenAICompatibleServer, cache: Path | None, retries: int = 2, key_env: str | None = None
) -> Judge:
    config = judge_config(
        provider="openai",
        model="judge-1",
        base_url=server.url,
        max_retries=retries,
        api_key_env=key_env,
        concurrency=1,
        timeout_s=5,
    )
    return Judge(config, cache)


def test_verdicts_come_through_the_openai_client_and_are_cached(
    openai_server: OpenAICompatibleServer, tmp_path: Path
) -> None:
    openai_server.answer = grade
    first = judge(openai_server, tmp_path)
    assert first(TRIPLES) == [5, 2, 2]
    assert openai_server.count == 3 and first.stats["requests"] == 3
    sent = openai_server.received[0]
    assert sent["model"] == "judge-1" and sent["temperature"] == 0.0 and sent["max_tokens"] == 256
    assert (
        "Fine, like table salt." in sent["messages"][0]["content"]
        and '{"score": <integer 1 to 5>' in sent["messages"][0]["content"]
    )
    # A new judge (a later build) asks nothing again: answers are cached by the digest of the prompt.
    again = judge(openai_server, tmp_path)
    assert (
        again(TRIPLES) == [5, 2, 2] and openai_server.count == 3 and again.stats["cache_hits"] == 3
    )
    assert again(TRIPLES[:1] + [("New?", "Yes.", "Yes.")]) == [5, 5] and openai_server.count == 4


def test_malformed_verdicts_are_retried_then_counted(
    openai_server: OpenAICompatibleServer, tmp_path: Path
) -> None:
    openai_server.answer = grade
    # The first triple gets three bad verdicts (one ask plus two re-asks), the second one bad then a good one.
    openai_server.script(
        Content("The answer deserves a 4."),
        Content('{"score": 9}'),
        Content('{"score": "4"}'),
        Content('{"score": 4.5}'),
    )
    j = judge(openai_server, tmp_path, retries=2)
    assert j(TRIPLES[:2]) == [None, 2]
    assert j.stats["invalid"] == 1 and j.stats["rejected_answers"] == 4 and j.stats["verdicts"] == 2
    assert openai_server.count == 5
    correction = openai_server.received[1]["messages"]
    assert [m["role"] for m in correction] == [
        "user",
        "assistant",
        "user",
    ] and "not valid JSON" in correction[2]["content"]
    assert "must be from 1 to 5" in openai_server.received[2]["messages"][-1]["content"]


def test_the_api_key_is_sent_but_never_stored(
    openai_server: OpenAICompatibleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_server.answer = grade
    monkeypatch.setenv("OPENSEM_TEST_JUDGE_KEY", "sk-judge-secret-123")
    assert judge(openai_server, tmp_path, key_env="OPENSEM_TEST_JUDGE_KEY")(TRIPLES[:1]) == [5]
    assert openai_server.authorization == ["Bearer sk-judge-secret-123"]
    stored = [path.read_text() for path in tmp_path.rglob("*") if path.is_file()]
    assert stored and not any("sk-judge-secret-123" in text for text in stored)
    monkeypatch.delenv("OPENSEM_TEST_JUDGE_KEY")
    with pytest.raises(MissingApiKey, match="OPENSEM_TEST_JUDGE_KEY"):
        judge(openai_server, None, key_env="OPENSEM_TEST_JUDGE_KEY")(TRIPLES[1:2])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"score": 4, "reason": "ok"}', None),
        ('```json\n{"score": 1}\n```', None),
        ("4", "expected a JSON object"),
        ('{"score": true}', "must be an integer"),
        ('{"score": 4.0}', "must be an integer"),
        ('{"score": 0}', "must be from 1 to 5"),
        ('{"verdict": 3}', "must be an integer"),
        ('Score: {"score": 3}', "not valid JSON"),
    ],
)
def test_verdicts_are_parsed_strictly(text: str, error: str | None) -> None:
    if error is None:
        assert parse_verdict(text) in (1, 4)
    else:
        with pytest.raises(InvalidAnswer, match=error):
            parse_verdict(text)


def test_rubric_rendering_and_validation() -> None:
    text = render_rubric(DEFAULT_RUBRIC, "Q {answer}?", "R", "")
    assert "Q {answer}?" in text and "(no answer)" in text and '{"score": <integer 1 to 5>' in text
    assert render_rubric("{question}|{reference}|{answer}", "q", "r", "a") == "q|r|a"
    with pytest.raises(ValidationError, match="missing {reference}"):
        judge_config(provider="offline", rubric="Grade {question}: {answer}")


def test_offline_judge_is_a_deterministic_heuristic(tmp_path: Path) -> None:
    offline = Judge(judge_config(provider="offline"), tmp_path)
    assert offline(TRIPLES) == [5, 1, 4]
    assert "not a language model" in offline.describe()
    assert not any(tmp_path.iterdir())  # nothing cached: answering again is free
