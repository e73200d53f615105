"""The response cache and the offline provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.forge.config import synthesis_config
from opensem.forge.parse import items_validator
from opensem.forge.prompts import chunk_request
from opensem.teachers import ChatRequest, TeacherError, provider_from_config, provider_names
from opensem.teachers.cache import TeacherCache, answer_key
from opensem.teachers.offline import register_offline_task

MESSAGES = [{"role": "user", "content": "What is crema?"}]
CHUNK = """# Grind Size

Grind finer when the shot runs fast. A double shot should take 25 to 30 seconds.

## Dose

Use 18 grams of coffee in a standard double basket. Weigh every dose on a scale."""


def test_key_depends_on_everything_that_changes_the_answer() -> None:
    base = answer_key("openai", "m", "http://h/v1", MESSAGES, {"temperature": 0.7})
    assert base == answer_key("openai", "m", "http://h/v1/", MESSAGES, {"temperature": 0.7})
    variants = [
        answer_key("openai", "other", "http://h/v1", MESSAGES, {"temperature": 0.7}),
        answer_key("openai", "m", "http://other/v1", MESSAGES, {"temperature": 0.7}),
        answer_key(
            "openai",
            "m",
            "http://h/v1",
            [{"role": "user", "content": "What is a lungo?"}],
            {"temperature": 0.7},
        ),
        answer_key("openai", "m", "http://h/v1", MESSAGES, {"temperature": 0.0}),
    ]
    assert len({base, *variants}) == 5


def test_cache_round_trip_is_atomic_and_drops_corrupt_entries(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path / "teacher")
    key = answer_key("openai", "m", None, MESSAGES, {})
    assert cache.get(key) is None
    cache.put(key, '{"answer": "foam"}', 10, 5)
    assert cache.get(key) == {"text": '{"answer": "foam"}', "input_tokens": 10, "output_tokens": 5}
    assert len(cache) == 1 and not list(
        (tmp_path / "teacher").glob("*/.answer-*")
    )  # no temporary files left
    path = tmp_path / "teacher" / key[:2] / f"{key}.json"
    path.write_text('{"text": "half-writ')
    assert cache.get(key) is None and not path.exists()


def test_registry_names_every_provider() -> None:
    assert provider_names() == ["local", "offline", "openai"]
    with pytest.raises(Exception, match="provider=anthropic"):
        synthesis_config(provider="anthropic")


def test_offline_is_deterministic_honest_and_parses_like_a_teacher(tmp_path: Path) -> None:
    offline = provider_from_config(synthesis_config(), tmp_path)
    assert (
        not offline.language_model
        and offline.describe() == "offline template generator (not a language model)"
    )
    request = chunk_request({}, "instructions", CHUNK, "docs/grind.md", 4)
    first = offline.complete_many([request], validate=items_validator("instructions", 4))
    again = offline.complete_many([request], validate=items_validator("instructions", 4))
    assert first == again and first[0].ok and len(first[0].value) == 4
    questions = [pair["question"] for pair in first[0].value]
    assert questions[:2] == ["What should I know about grind size?", "Can you explain dose?"]
    assert questions[2].startswith("Fill in the blank: ") and "____" in questions[2]
    assert "25 to 30 seconds" in first[0].value[0]["answer"]
    assert not (tmp_path / "teacher").exists()  # nothing to cache: answering again is free


def test_offline_preferences_have_a_different_flawed_answer() -> None:
    offline = provider_from_config(synthesis_config())
    [result] = offline.complete_many(
        [chunk_request({}, "preferences", CHUNK, "s", 2)],
        validate=items_validator("preferences", 2),
    )
    for pair in result.value:
        assert pair["flawed_answer"] != pair["answer"]
    assert "25 to 30" not in result.value[0]["flawed_answer"]  # numbers changed


def test_offline_refusals_and_unknown_tasks() -> None:
    offline = provider_from_config(synthesis_config())
    [result] = offline.complete_many(
        [chunk_request({}, "refusals", CHUNK, "s", 2)], validate=items_validator("refusals", 2)
    )
    assert len(result.value) == 2 and all("can't help" in t["refusal"] for t in result.value)
    with pytest.raises(TeacherError, match="cannot answer task 'poem'"):
        offline.complete_many([ChatRequest(messages=MESSAGES, context={"task": "poem"})])


def test_other_components_can_register_offline_tasks() -> None:
    register_offline_task("test-echo")(lambda context: {"echo": context["value"]})
    [result] = provider_from_config(synthesis_config()).complete_many(
        [ChatRequest(messages=MESSAGES, context={"task": "test-echo", "value": 7})]
    )
    assert json.loads(str(result.text)) == {"echo": 7}
