"""Edits of generated pairs: the newest action per record wins, ids stay, stale ones are counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.data.edits import EditAction, append_edits, apply_edits, read_edits
from opensem.data.formats import make_record
from opensem.errors import DataError


def _pair(question: str, answer: str) -> dict[str, object]:
    return make_record(
        "doc.md",
        messages=[{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
    )


def test_newest_action_per_record_is_applied_in_order(tmp_path: Path) -> None:
    records = [_pair("Q1", "A1"), _pair("Q2", "A2"), _pair("Q3", "A3"), make_record("d", text="T")]
    a, b, c, doc = (str(r["id"]) for r in records)
    append_edits(tmp_path, [EditAction(id=a, action="delete"), EditAction(id=b, action="approve")])
    append_edits(
        tmp_path,
        [
            EditAction(id=a, action="edit", answer="A1 better"),  # newer than the delete
            EditAction(id=c, action="delete"),
            EditAction(id="gone", action="approve"),
        ],
    )
    kept, counts = apply_edits(records, read_edits(tmp_path))
    assert [r["id"] for r in kept] == [a, b, doc]  # order and ids kept
    assert kept[0]["messages"][1]["content"] == "A1 better"
    assert kept[0]["messages"][0]["content"] == "Q1"
    assert kept[1] == records[1]  # approving changes nothing
    assert counts == {"records": 4, "edited": 1, "deleted": 1, "approved": 1, "stale": 1}


def test_a_bad_line_is_named_and_an_empty_edit_refused(tmp_path: Path) -> None:
    (tmp_path / "edits.jsonl").write_text('{"id": "x", "action": "approve"}\n{"id": "x"}\n')
    with pytest.raises(DataError) as caught:
        read_edits(tmp_path)
    assert caught.value.location.line == 2
    with pytest.raises(ValueError, match="new question, a new answer"):
        EditAction(id="x", action="edit")


def test_only_pairs_can_be_edited() -> None:
    document = make_record("d", text="T")
    with pytest.raises(DataError, match="only pairs can be edited"):
        apply_edits(
            [document], {str(document["id"]): EditAction(id="x", action="edit", answer="y")}
        )
