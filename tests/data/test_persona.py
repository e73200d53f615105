"""A persona: one system message through training records, evaluation items, lots and serving."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from opensem.data.persona import items_with_persona, records_with_persona, with_system
from opensem.errors import ManifestError
from opensem.evaluation.items import Item
from opensem.project import load_graph
from opensem.training.data import feedback_rows, preference_rows

REPO = Path(__file__).resolve().parents[2]
STYLE = "Answer in one friendly sentence, like a barista at the counter."


def test_records_items_and_preference_prompts_get_the_system_message() -> None:
    records = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"text": "a document"},
        {"prompt": "q", "chosen": "good", "rejected": "bad"},
        {"messages": [{"role": "system", "content": "own"}, {"role": "user", "content": "q"}]},
    ]
    shaped = records_with_persona(records, STYLE)
    assert shaped[0]["messages"][0] == {"role": "system", "content": STYLE} and shaped[1] == {
        "text": "a document"
    }
    assert (
        shaped[2]["system"] == STYLE and shaped[3]["messages"][0]["content"] == "own"
    )  # a chat's own system message stays
    assert records_with_persona(records, None) is records

    class Chat:
        chat_template = "{{ messages }}"

    assert preference_rows([shaped[2]], Chat())[0]["prompt"] == [
        {"role": "system", "content": STYLE},
        {"role": "user", "content": "q"},
    ]
    assert (
        feedback_rows([shaped[2]], object())[0]["prompt"] == f"{STYLE}\n\nq"
    )  # no chat template: plain text
    item = items_with_persona(
        [Item("1", "golden", ({"role": "user", "content": "q"},), "a")], STYLE
    )[0]
    assert item.messages[0]["role"] == "system" and item.question == "q"
    assert with_system([], None) == []


def demo(tmp_path: Path, persona: str | None) -> Path:
    shutil.copytree(REPO / "data" / "tiny-demo", tmp_path / "data" / "tiny-demo")
    text = (REPO / "manifests" / "tiny-demo.yaml").read_text()
    if persona is not None:
        text = text.replace("\nbase_model:", f"\n{persona}\nbase_model:", 1)
    (tmp_path / "manifests").mkdir(exist_ok=True)
    (tmp_path / "manifests" / "tiny-demo.yaml").write_text(text)
    return tmp_path / "manifests" / "tiny-demo.yaml"


def test_the_persona_keys_the_lots_it_reaches_and_nothing_else(tmp_path: Path) -> None:
    plain = load_graph(demo(tmp_path / "a", None))
    inline = load_graph(demo(tmp_path / "b", f"persona:\n  system: {STYLE}"))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "style.md").write_text(STYLE + "\n")
    from_file = load_graph(demo(tmp_path / "c", "persona: {file: style.md}"))
    for stage in ("train", "baseline", "evaluate"):
        assert (
            "persona" not in plain.node(stage).params
        )  # no persona: lots as before personas existed
        assert (
            inline.node(stage).params["persona"] == from_file.node(stage).params["persona"] == STYLE
        )
    for stage in ("ingest", "split", "dedup"):
        assert inline.node(stage).params == plain.node(stage).params


def test_a_missing_persona_file_or_both_forms_are_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as missing:
        load_graph(demo(tmp_path / "a", "persona: {file: missing.md}"))
    assert re.search(
        r"tiny-demo\.yaml:\d+: persona\.file: cannot read the persona file", missing.value.render()
    )
    with pytest.raises(ManifestError, match="one of the two"):
        load_graph(demo(tmp_path / "b", "persona: {file: x.md, system: hi}"))


def test_the_server_asks_under_the_persona_the_adapter_was_trained_with(
    releases: dict[str, Path], tmp_path: Path
) -> None:
    import logging

    from opensem.serving.completions import prompt_of
    from opensem.serving.config import ServeConfig
    from opensem.serving.openai_api import ChatRequest
    from opensem.serving.pool import ModelPool
    from opensem.serving.releases import resolve

    styled = tmp_path / "styled"
    shutil.copytree(releases["alpha"], styled)
    (styled / "adapter" / "system_prompt.txt").write_text(STYLE + "\n")
    pool = ModelPool(ServeConfig(insecure_no_auth=True), logging.getLogger("test"))
    try:
        served = pool.add(resolve(f"styled={styled}", tmp_path / "cache"))
        plain = pool.add(resolve(f"plain={releases['alpha']}", tmp_path / "cache"))
        ask = ChatRequest(model="x", messages=[{"role": "user", "content": "Which grind?"}])
        assert served.system == STYLE and plain.system is None
        ids, text, sources = prompt_of(ask, served, 2048)
        assert STYLE in text and len(ids) > len(prompt_of(ask, plain, 2048)[0])
        assert sources == []  # no knowledge base: no sources
        own = ChatRequest(
            model="x",
            messages=[
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Which grind?"},
            ],
        )
        assert STYLE not in prompt_of(own, served, 2048)[1]  # a client's own system message wins
    finally:
        pool.close()
