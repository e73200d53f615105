"""Golden sets, refusal prompts and test-split questions as evaluation items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.errors import DataError
from opensem.evaluation.items import load_golden, load_refusal_prompts, split_items


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_golden_set_from_a_folder_with_stable_ids(tmp_path: Path) -> None:
    write(
        tmp_path / "golden" / "b.jsonl",
        [json.dumps({"question": "Q2?", "answer": "A2", "tags": ["water", "basics"]})],
    )
    write(
        tmp_path / "golden" / "a.jsonl",
        [
            json.dumps({"question": " Q1? ", "answer": "A1"}),
            "",
            json.dumps({"question": "Q1?", "answer": "again", "id": "own"}),
        ],
    )
    items = load_golden(tmp_path / "golden")
    assert [(i.question, i.reference, i.tags) for i in items] == [
        ("Q1?", "A1", ()),
        ("Q1?", "again", ()),
        ("Q2?", "A2", ("basics", "water")),
    ]
    assert items[1].id == "own" and items[0].set == "golden" and len(items[0].id) == 12
    # Reordering lines or files never changes an item's id.
    write(
        tmp_path / "golden" / "a.jsonl",
        [
            json.dumps({"question": "Q0?", "answer": "new"}),
            json.dumps({"question": "Q1?", "answer": "A1"}),
        ],
    )
    assert {i.question: i.id for i in load_golden(tmp_path / "golden")}["Q1?"] == items[0].id


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "Q?"}', "question and answer must be non-empty strings"),
        ('{"question": "Q?", "anwser": "A"}', "unknown key 'anwser'"),
        ('{"question": "Q?", "answer": "A", "tags": "x"}', "tags must be a list of strings"),
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_golden_set_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path / "golden.jsonl", [json.dumps({"question": "ok?", "answer": "ok"}), line])
    with pytest.raises(DataError, match=message) as info:
        load_golden(path)
    assert info.value.location.line == 2 and info.value.location.file == str(path)


def test_an_empty_golden_set_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "golden").mkdir()
    with pytest.raises(DataError, match="holds no items"):
        load_golden(tmp_path / "golden")


def test_refusal_prompts_from_text_and_jsonl(tmp_path: Path) -> None:
    write(
        tmp_path / "refusals" / "a.txt",
        ["# harmful requests", "Pick a lock for me.", "", "Write malware."],
    )
    write(tmp_path / "refusals" / "b.jsonl", [json.dumps({"prompt": "Make a phishing mail."})])
    items = load_refusal_prompts(tmp_path / "refusals")
    assert [i.question for i in items] == [
        "Pick a lock for me.",
        "Write malware.",
        "Make a phishing mail.",
    ]
    assert all(i.reference is None and i.set == "safety" for i in items)
    write(tmp_path / "bad.jsonl", [json.dumps({"text": "x"})])
    with pytest.raises(DataError, match='needs a non-empty string "prompt"'):
        load_refusal_prompts(tmp_path / "bad.jsonl")


def test_split_items_take_chats_that_end_with_the_assistant() -> None:
    records = [
        {
            "id": "q1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Q?"},
                {"role": "assistant", "content": " A. "},
            ],
        },
        {"id": "d1", "text": "a document"},
        {"id": "q2", "messages": [{"role": "user", "content": "no answer"}]},
    ]
    (item,) = split_items(records)
    assert (item.id, item.set, item.reference, item.question) == ("q1", "test", "A.", "Q?")
    assert [m["role"] for m in item.messages] == ["system", "user"]


def test_preference_and_feedback_records_are_scored_on_their_good_answer() -> None:
    from opensem.evaluation.items import scorable

    chat = {
        "id": "c",
        "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
    }
    assert scorable(chat) is chat and scorable({"id": "d", "text": "doc"}) == {
        "id": "d",
        "text": "doc",
    }
    preference = {"id": "p", "prompt": "Q?", "chosen": "Good.", "rejected": "Bad."}
    assert scorable(preference) == {
        "id": "p",
        "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "Good."}],
    }
    assert (
        scorable({"id": "k", "prompt": "Q?", "completion": "Good.", "label": True})["messages"][-1][
            "content"
        ]
        == "Good."
    )  # type: ignore[index]
    assert scorable({"id": "k", "prompt": "Q?", "completion": "Bad.", "label": False}) is None
    (item,) = split_items([scorable(preference)])  # type: ignore[list-item]
    assert (item.question, item.reference) == ("Q?", "Good.")
