"""Feedback records: validated, appended durably, a torn last line skipped and said, never trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.errors import DataError
from opensem.feedback.records import (
    FeedbackRecord,
    append_feedback,
    parse_rows,
    read_feedback,
    read_folder,
)


def test_a_record_needs_a_rating_or_an_edit_that_changes_something() -> None:
    assert FeedbackRecord(prompt="q", answer="a", rating=5).edited is None
    with pytest.raises(ValueError, match="a rating \\(1-5\\), an edited answer, or both"):
        FeedbackRecord(prompt="q", answer="a")
    with pytest.raises(ValueError, match="the same as the answer"):
        FeedbackRecord(prompt="q", answer="same", edited=" same ")
    with pytest.raises(DataError) as bad:
        parse_rows(
            [
                {"prompt": "q", "answer": "a", "rating": 9},
                {"prompt": "", "answer": "a", "rating": 1},
            ],
            "upload.jsonl",
        )
    assert (
        "upload.jsonl:1: rating" in bad.value.message
        and "upload.jsonl:2: prompt" in bad.value.message
    )  # every problem at once


def test_append_then_read_back_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "feedback"
    first = FeedbackRecord(
        prompt="How long to rest beans?",
        answer="One day.",
        edited="About a week after roasting.",
        tags=["wrong-fact"],
    )
    path = append_feedback(
        folder, [first, FeedbackRecord(prompt="Grind?", answer="Finer.", rating=5)]
    )
    with path.open("ab") as handle:
        handle.write(b'{"prompt": "cut sh')  # a crash in the middle of a write
    records, warnings = read_feedback(path)
    assert [r.prompt for r in records] == ["How long to rest beans?", "Grind?"] and records[
        0
    ].tags == ["wrong-fact"]
    assert len(warnings) == 1 and "unfinished line" in warnings[0]
    append_feedback(
        folder, [FeedbackRecord(prompt="Milk?", answer="65 C.", rating=4)]
    )  # starts on a fresh line
    assert [r.prompt for r in read_folder(folder)[0]] == [
        "How long to rest beans?",
        "Grind?",
        "Milk?",
    ]
    assert json.loads(path.read_text().splitlines()[0])["created"].endswith("+00:00")


def test_a_bad_line_in_the_middle_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    path.write_text(
        '{"prompt": "q", "answer": "a", "rating": 3}\n{"prompt": "q", "answer": "a", "rating": 0}\n{"prompt": "x", '
        '"answer": "y", "rating": 5}\n'
    )
    with pytest.raises(DataError) as bad:
        read_feedback(path)
    assert (
        bad.value.location.line == 2
        and bad.value.location.key == "rating"
        and "rating" in bad.value.hint
    )
