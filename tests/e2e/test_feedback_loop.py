"""The loop a user lives in, on the tiny demo: build, serve, answer, feedback with edits through
the server, rebuild (only what the feedback reaches reruns), and the edited answers' prompts score
better with the new release than with the one that got the feedback."""

from __future__ import annotations

import json

import openai
import pytest

from tests.e2e.conftest import Project, copy_demo
from tests.serving.test_http import call

pytestmark = pytest.mark.slow
KEY = "loop-test-key-" + "k" * 30
EDITS = {
    "How long should I let a new bag of beans rest?": (
        "Rest espresso beans five to ten days after the roast date before brewing."
    ),
    "What does channeling look like in a shot?": (
        "Channeling shows as fast blonde streaks and spurts; even "
        "out the puck with better distribution."
    ),
    "Should I weigh my dose?": "Yes, weigh every dose to a tenth of a gram so each shot starts the same.",
    "How do I clean the group head daily?": (
        "Brush the gasket and flush the group head with hot water after the last shot."
    ),
    "What grind size suits a moka pot?": "Use a grind slightly coarser than espresso for a moka pot.",
    "Why is my milk foam bubbly?": (
        "Big bubbles mean too much air late; stretch early, then roll the milk to a fine microfoam."
    ),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = copy_demo(tmp_path_factory.mktemp("loop"))
    project.build()
    return project


def test_feedback_from_the_server_retrains_only_what_it_reaches_and_helps(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opensem.serving.config import ServeConfig
    from opensem.serving.server import Server

    published = project.lock_data()["published"]
    monkeypatch.setenv("OPENSEM_API_KEY", KEY)
    server = Server(
        [str(project.manifest)], ServeConfig(port=0), project.root / "build" / "cache" / "releases"
    )
    try:
        server.start()
        server.wait_ready()
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
        for question, edit in EDITS.items():
            answer = client.chat.completions.create(
                model="tiny-demo",
                messages=[{"role": "user", "content": question}],
                max_tokens=12,
                temperature=0,
            )
            status, _, raw = call(
                server.url,
                "POST",
                "/v1/feedback",
                {"completion_id": answer.id, "edited": edit, "rating": 1, "tags": ["loop"]},
                headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            )
            assert status == 200 and json.loads(raw)["stored"], raw
        status, _, raw = call(
            server.url,
            "POST",
            "/v1/feedback",
            {"completion_id": "chatcmpl-unknown", "rating": 5},
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        assert status == 404 and json.loads(raw)["error"]["code"] == "completion_not_found"
    finally:
        server.close()

    stored = [
        json.loads(line)
        for line in (project.root / "data" / "tiny-demo" / "feedback" / "feedback.jsonl")
        .read_text()
        .splitlines()
    ]
    assert (
        len(stored) == len(EDITS)
        and {r["lot"] for r in stored} == {published["lot"]}
        and {r["prompt"] for r in stored} == set(EDITS)
    )
    code, output = project.run("feedback", "list", str(project.manifest))
    assert code == 0 and f"{len(EDITS)} records: {len(EDITS)} edits" in output

    ran, output = project.build()
    assert "base_model" not in ran and "baseline" not in ran  # the feedback reaches neither
    assert {"ingest", "train", "evaluate", "review", "publish"} <= set(ran), ran
    assert "feedback: 6 edited answers" in output
    review = json.loads(
        (project.root / project.lock_data()["published"]["uri"] / "review.json").read_text()
    )
    assert review["previous"]["lot"] == published["lot"] and review["prompts"] == len(EDITS)
    assert review["new"]["perplexity"] < review["previous"]["perplexity"], (
        review
    )  # the edits were learned
    assert project.build()[0] == []  # and the next build has nothing to do
