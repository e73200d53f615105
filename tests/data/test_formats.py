"""Format detection, normalization to the record contract, and export back to each format."""

from __future__ import annotations

from typing import Any

import pytest

from opensem.data.formats import (
    detect_format,
    normalize,
    record_id,
    record_kind,
    to_alpaca,
    to_dpo,
    to_messages,
    to_sharegpt,
)
from opensem.errors import DataError

ALPACA = {"instruction": "What is crema?", "input": "", "output": "The foam on top of an espresso."}
SHAREGPT = {
    "conversations": [
        {"from": "human", "value": "What is crema?"},
        {"from": "gpt", "value": "The foam."},
    ]
}
MESSAGES = {
    "messages": [
        {"role": "user", "content": "What is crema?"},
        {"role": "assistant", "content": "The foam."},
    ]
}
DPO = {"prompt": "What is crema?", "chosen": "The foam on top.", "rejected": "A kind of milk."}
TEXT = {"text": "Espresso is brewed under pressure."}


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        (ALPACA, "alpaca"),
        (SHAREGPT, "sharegpt"),
        (MESSAGES, "messages"),
        (DPO, "dpo"),
        (TEXT, "text"),
    ],
)
def test_detect_format(record: dict[str, Any], fmt: str) -> None:
    assert detect_format(record) == fmt


def test_detect_format_unknown_keys_names_them() -> None:
    with pytest.raises(DataError, match="question"):
        detect_format({"question": "q", "answer": "a"})


def test_alpaca_with_input_and_system() -> None:
    raw = {
        "instruction": "Calculate the ratio.",
        "input": "18 g in, 36 g out",
        "output": "1 to 2.",
        "system": "Be brief.",
    }
    record = normalize(raw, "alpaca", "data/a.jsonl")
    assert record["source"] == "data/a.jsonl"
    assert record["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Calculate the ratio.\n\n18 g in, 36 g out"},
        {"role": "assistant", "content": "1 to 2."},
    ]
    assert record_kind(record) == "instruction"


def test_equivalent_formats_get_the_same_id() -> None:
    """The id depends on content only, so the same chat in any format or file is one record."""
    from_sharegpt = normalize(SHAREGPT, "sharegpt", "a.jsonl")
    from_messages = normalize(MESSAGES, "messages", "b.json")
    assert from_sharegpt["messages"] == from_messages["messages"]
    assert from_sharegpt["id"] == from_messages["id"]
    assert len(from_sharegpt["id"]) == 16
    assert from_sharegpt["id"] == record_id({"messages": from_messages["messages"]})


def test_sharegpt_roles_and_system() -> None:
    raw = {
        "system": "You are a barista.",
        "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
    }
    record = normalize(raw, "sharegpt", "s.jsonl")
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]


def test_dpo_with_strings_and_message_lists() -> None:
    as_strings = normalize(DPO, "dpo", "p.jsonl")
    as_lists = normalize(
        {
            "prompt": [{"role": "user", "content": "What is crema?"}],
            "chosen": [{"role": "assistant", "content": "The foam on top."}],
            "rejected": [
                {"role": "user", "content": "What is crema?"},
                {"role": "assistant", "content": "A kind of milk."},
            ],
        },
        "dpo",
        "p.jsonl",
    )
    assert {k: as_strings[k] for k in ("prompt", "chosen", "rejected")} == DPO
    assert as_lists == as_strings
    assert record_kind(as_strings) == "preference"


def test_text_record() -> None:
    record = normalize(TEXT, "text", "t.jsonl")
    assert record == {
        "id": record_id({"text": TEXT["text"]}),
        "source": "t.jsonl",
        "text": TEXT["text"],
    }
    assert record_kind(record) == "document"


@pytest.mark.parametrize(
    ("raw", "fmt", "field"),
    [
        ({"instruction": "q"}, "alpaca", "'output'"),
        ({"conversations": []}, "sharegpt", "'conversations'"),
        ({"messages": [{"role": "user", "content": "q"}]}, "messages", "assistant"),
        ({"prompt": "q", "chosen": "a"}, "dpo", "'rejected'"),
        ({"body": "x"}, "text", "'text'"),
        ({"messages": [{"role": "robot", "content": "q"}]}, "messages", "robot"),
        ({"instruction": "q", "output": 3}, "alpaca", "must be a string"),
    ],
)
def test_bad_record_names_field_and_line(raw: dict[str, Any], fmt: str, field: str) -> None:
    with pytest.raises(DataError, match=field) as info:
        normalize(raw, fmt, "data/bad.jsonl", line=7)
    assert info.value.location.file == "data/bad.jsonl"
    assert info.value.location.line == 7
    assert info.value.render().startswith("data/bad.jsonl:7: ")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(DataError, match="unknown format"):
        normalize(TEXT, "csv", "t.jsonl")


def test_export_round_trips() -> None:
    instruction = normalize(ALPACA, "alpaca", "a.jsonl")
    assert to_alpaca(instruction) == ALPACA
    assert normalize(to_sharegpt(instruction), "sharegpt", "a.jsonl") == instruction
    assert normalize(to_messages(instruction), "messages", "a.jsonl") == instruction
    preference = normalize(DPO, "dpo", "p.jsonl")
    assert to_dpo(preference) == DPO
    assert to_messages(preference)["messages"][-1] == {
        "role": "assistant",
        "content": DPO["chosen"],
    }


def test_export_refuses_what_does_not_fit() -> None:
    multi_turn = normalize(
        {
            "messages": [
                *MESSAGES["messages"],
                {"role": "user", "content": "More?"},
                {"role": "assistant", "content": "No."},
            ]
        },
        "messages",
        "m.jsonl",
    )
    with pytest.raises(DataError, match="alpaca"):
        to_alpaca(multi_turn)
    with pytest.raises(DataError):
        to_dpo(multi_turn)
    with pytest.raises(DataError):
        to_messages(normalize(TEXT, "text", "t.jsonl"))
