"""A release with a knowledge base, served: chat answers carry their sources (in the text and a
`sources` list), streams too, answers are recorded when asked, and /v1/embeddings speaks OpenAI's
embeddings API with the release's embedder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import Project
from tests.e2e.test_knowledge import knowledge_project
from tests.serving.conftest import start_server
from tests.serving.releases import KEY


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, str]]:
    project = knowledge_project(tmp_path_factory.mktemp("kb") / "p")
    project.build()
    server = start_server(
        [f"{project.manifest}"], project.root / "build" / "cache" / "releases", record_answers=True
    )
    yield project, server.url
    server.close()


def test_chat_answers_cite_their_sources_and_are_recorded(served: tuple[Project, str]) -> None:
    project, url = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
    answer = client.chat.completions.create(
        model="twice", messages=[{"role": "user", "content": "Why is my shot sour?"}], max_tokens=8
    )
    text = answer.choices[0].message.content or ""
    sources = (answer.model_extra or {})["sources"]
    assert text.split("\n\n")[-1].startswith("Sources: [1] data/twice/docs/"), text
    assert len(sources) == 4 and "sour" in sources[0]["source"] and sources[0]["rank"] == 1
    recorded = [
        json.loads(line)
        for line in (project.root / "data" / "twice" / "answers" / "answers.jsonl")
        .read_text()
        .splitlines()
    ]
    assert (
        recorded[-1]["question"] == "Why is my shot sour?"
        and recorded[-1]["sources"][0]["chunk"] == sources[0]["id"]
    )

    stream = client.chat.completions.create(
        model="twice",
        messages=[{"role": "user", "content": "How hot should milk get?"}],
        max_tokens=8,
        stream=True,
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "\n\nSources: [1] " in streamed and (chunks[-1].model_extra or {}).get("sources"), (
        streamed
    )


def test_embeddings_speak_openais_api(served: tuple[Project, str]) -> None:
    _, url = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY)
    result = client.embeddings.create(model="twice", input=["steam the milk", "grind finer"])
    assert [len(d.embedding) for d in result.data] == [384, 384] and result.usage.prompt_tokens >= 6
    one = (
        client.embeddings.create(model="twice", input="steam the milk", encoding_format="float")
        .data[0]
        .embedding
    )
    assert one == pytest.approx(result.data[0].embedding, abs=1e-5)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nobody", input="x")
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="twice", input=[])
    assert caught.value.body["param"] == "input"  # type: ignore[index]


def test_a_release_without_a_knowledge_base_has_no_embedder(
    releases: dict[str, Path], server: object
) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="alpha", input="x")
    assert "no knowledge base" in str(caught.value)
