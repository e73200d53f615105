"""Hot reload: a newly published tag is loaded and swapped in while the old release finishes the
requests it started; /v1/models says which lot each name serves."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.serving.conftest import start_server
from tests.serving.releases import KEY, publish

QUESTION = [{"role": "user", "content": "Which chain lube for rain?"}]
LOTS = {"v1": "1" * 64, "v2": "2" * 64}


@pytest.fixture
def watched(releases: dict[str, Path], tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    registry = tmp_path / "registry"
    publish(releases["alpha"], registry, "expert", "v1", LOTS["v1"])
    server = start_server(
        [f"{registry}/expert"], tmp_path / "cache", watch=True, watch_interval_s=0.2
    )
    yield server, registry
    server.close()


def ask(client: openai.OpenAI, max_tokens: int = 10) -> str:
    return (
        client.chat.completions.create(
            model="expert", messages=QUESTION, max_tokens=max_tokens, temperature=0
        )
        .choices[0]
        .message.content
        or ""
    )


def test_a_new_tag_swaps_in_without_dropping_a_request_in_flight(
    watched: tuple[Any, Path], releases: dict[str, Path]
) -> None:
    server, registry = watched
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    served_v1 = server.state.pool.served["expert"]
    assert client.models.retrieve("expert").model_dump()["lot"] == LOTS["v1"]
    whole_v1 = ask(client, 400)
    with client.chat.completions.with_streaming_response.create(
        model="expert", messages=QUESTION, max_tokens=400, temperature=0, stream=True
    ) as response:
        lines = response.iter_lines()
        started = [
            line for line, _ in zip(lines, range(3))
        ]  # role chunk and two deltas: generating on v1 now
        publish(releases["beta"], registry, "expert", "v2", LOTS["v2"])
        rest = [line for line in lines if line.startswith("data: ")]
    chunks = [json.loads(line[6:]) for line in [*started, *rest] if line.startswith("data: {")]
    assert rest[-1] == "data: [DONE]" and [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"]
    ][-1] in ("length", "stop")
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == whole_v1
    )  # answered whole, by v1

    deadline = time.monotonic() + 60
    while client.models.retrieve("expert").model_dump()["lot"] != LOTS["v2"]:
        assert time.monotonic() < deadline, "the new tag was not served"
        time.sleep(0.1)
    assert client.models.retrieve("expert").model_dump()["tag"] == "v2"
    assert ask(client) != whole_v1[: len(ask(client))]  # v2 (another adapter) answers now
    served_v2 = server.state.pool.served["expert"]
    assert served_v2.engine is served_v1.engine and served_v1.retired  # same base, no reload of it
    while served_v1.adapter in served_v1.engine.model.peft_config:  # v1's adapter is unloaded
        assert time.monotonic() < deadline, "the old adapter stayed loaded"
        time.sleep(0.05)
