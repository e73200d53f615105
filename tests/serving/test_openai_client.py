"""The server as clients use it: the official openai client, sync, async and streaming."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from tests.serving.releases import KEY, greedy_answer

QUESTION = [
    {"role": "system", "content": "You are a helpful expert."},
    {"role": "user", "content": "How often should I water a fern?"},
]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def expected(adapters: dict[str, Path], tiny_model_dir: Path) -> dict[str, tuple[str, int]]:
    """What model.generate answers (greedy, 16 tokens) with each adapter: the server must say the same."""
    return {
        name: greedy_answer(tiny_model_dir, adapters[key], QUESTION, 16)
        for name, key in (("alpha", "a"), ("beta", "b"))
    }


def test_models_lists_each_release_with_where_it_came_from(
    client: openai.OpenAI, releases: dict[str, Path]
) -> None:
    models = {model.id: model for model in client.models.list().data}
    assert set(models) == {"alpha", "beta"}
    alpha = models["alpha"].model_dump()
    assert (
        alpha["object"] == "model"
        and alpha["kind"] == "adapter"
        and alpha["job_id"] == "alpha"
        and alpha["source"] == str(releases["alpha"])
    )
    assert client.models.retrieve("beta").id == "beta"


def test_chat_answers_as_the_adapter_does_under_its_chat_template(
    client: openai.OpenAI, expected: dict[str, tuple[str, int]]
) -> None:
    for name in ("alpha", "beta"):
        answer = client.chat.completions.create(
            model=name, messages=QUESTION, max_tokens=16, temperature=0
        )
        text, prompt_tokens = expected[name]
        assert (
            answer.choices[0].message.content == text
            and answer.choices[0].message.role == "assistant"
        )
        assert (
            answer.model == name
            and answer.id.startswith("chatcmpl-")
            and answer.object == "chat.completion"
        )
        assert (
            answer.usage.prompt_tokens == prompt_tokens
        )  # the release's chat template, applied as in training
        assert (
            answer.usage.completion_tokens <= 16
            and answer.usage.total_tokens == prompt_tokens + answer.usage.completion_tokens
        )
    assert (
        expected["alpha"][0] != expected["beta"][0]
    )  # the adapters differ, so the check above tells them apart


def test_streamed_chat_is_the_same_answer_in_pieces(
    client: openai.OpenAI, expected: dict[str, tuple[str, int]]
) -> None:
    chunks = list(
        client.chat.completions.create(
            model="alpha",
            messages=QUESTION,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == expected["alpha"][0]
    finishes = [
        chunk.choices[0].finish_reason
        for chunk in chunks
        if chunk.choices and chunk.choices[0].finish_reason
    ]
    assert finishes in (["length"], ["stop"])
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == expected["alpha"][1]
    assert len({chunk.id for chunk in chunks}) == 1


def test_max_tokens_stop_and_finish_reasons(
    client: openai.OpenAI, expected: dict[str, tuple[str, int]]
) -> None:
    short = client.chat.completions.create(
        model="alpha", messages=QUESTION, max_tokens=3, temperature=0
    )
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3
    text = expected["alpha"][0]
    stop = text.strip()[len(text.strip()) // 2 :][
        :3
    ]  # a piece from the middle of the greedy answer
    stopped = client.chat.completions.create(
        model="alpha", messages=QUESTION, max_tokens=16, temperature=0, stop=[stop]
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == text[: text.find(stop)]
    streamed = client.chat.completions.create(
        model="alpha", messages=QUESTION, max_tokens=16, temperature=0, stop=stop, stream=True
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        == text[: text.find(stop)]
    )  # never shows the stop string's start


def test_a_seed_makes_sampling_repeatable(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        answer = client.chat.completions.create(
            model="beta", messages=QUESTION, max_tokens=12, temperature=1.0, top_p=0.9, seed=seed
        )
        return answer.choices[0].message.content

    assert sample(7) == sample(7)
    assert len({sample(seed) for seed in range(1, 5)}) > 1


def test_completions_endpoint_sync_and_streamed(client: openai.OpenAI) -> None:
    whole = client.completions.create(
        model="beta", prompt="Tighten the brake cable", max_tokens=10, temperature=0
    )
    assert whole.object == "text_completion" and whole.choices[0].finish_reason in (
        "length",
        "stop",
    )
    assert whole.usage.completion_tokens == 10 or whole.choices[0].finish_reason == "stop"
    pieces = client.completions.create(
        model="beta", prompt="Tighten the brake cable", max_tokens=10, temperature=0, stream=True
    )
    assert (
        "".join(piece.choices[0].text for piece in pieces if piece.choices) == whole.choices[0].text
    )


def test_async_client_with_requests_in_parallel(
    server, expected: dict[str, tuple[str, int]]
) -> None:
    async def ask_all() -> list[str]:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
        try:
            answers = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model=name, messages=QUESTION, max_tokens=16, temperature=0
                    )
                    for name in ("alpha", "beta") * 3
                )
            )
            stream = await client.chat.completions.create(
                model="beta", messages=QUESTION, max_tokens=16, temperature=0, stream=True
            )
            streamed = "".join(
                [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
            )
            return [answer.choices[0].message.content for answer in answers] + [streamed]
        finally:
            await client.close()

    answers = asyncio.run(ask_all())
    assert answers == [expected["alpha"][0], expected["beta"][0]] * 3 + [expected["beta"][0]]


def test_errors_reach_the_client_as_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gamma", messages=QUESTION)
    assert (
        missing.value.body["code"] == "model_not_found"
        and "alpha, beta" in missing.value.body["message"]
    )
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="alpha", messages=QUESTION, temperature=3)
    assert bad.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError, match="not supported by this server: n"):
        client.chat.completions.create(model="alpha", messages=QUESTION, n=2)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0).models.list()
    assert client.chat.completions.create(
        model="alpha", messages=QUESTION, max_tokens=2
    ).choices  # and it keeps serving
