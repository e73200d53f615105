"""Native KTO records (prompt, completion, label) are recognised and normalized as feedback records."""

from __future__ import annotations

import pytest

from opensem.data.formats import detect_format, normalize, record_kind
from opensem.errors import DataError


def test_kto_records_are_detected_and_normalized() -> None:
    raw = {
        "prompt": "Is espresso brewed under pressure?",
        "completion": "Yes, about nine bar.",
        "label": True,
    }
    assert detect_format(raw) == "kto"
    record = normalize(raw, "kto", "good.jsonl", line=3)
    assert record_kind(record) == "feedback"
    assert {k: record[k] for k in ("prompt", "completion", "label", "source")} == {
        **raw,
        "source": "good.jsonl",
    }
    assert (
        normalize({**raw, "label": False}, "kto", "x")["id"] != record["id"]
    )  # the label is content


def test_message_lists_collapse_like_dpo_sides() -> None:
    raw = {
        "prompt": [{"role": "user", "content": "Hi?"}],
        "completion": [{"role": "assistant", "content": "Hello."}],
        "label": False,
    }
    record = normalize(raw, "kto", "x")
    assert (record["prompt"], record["completion"], record["label"]) == ("Hi?", "Hello.", False)


@pytest.mark.parametrize("label", ["yes", 1, None])
def test_a_label_must_be_a_boolean(label: object) -> None:
    with pytest.raises(DataError, match="field 'label' must be true .* or false") as info:
        normalize({"prompt": "p", "completion": "c", "label": label}, "kto", "bad.jsonl", line=7)
    assert info.value.location.line == 7 and "read as kto" in info.value.hint


def test_a_preference_record_is_still_dpo() -> None:
    assert (
        detect_format(
            {"prompt": "p", "chosen": "c", "rejected": "r", "completion": "x", "label": True}
        )
        == "dpo"
    )
