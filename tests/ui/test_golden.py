"""The golden set as the data page edits it: half-filled rows are refused, tags survive an edit,
and picked pairs come from every document in turn, never from pairs a person kept."""

from __future__ import annotations

import pytest

from opensem.errors import DataError
from opensem.ui.data import Pair
from opensem.ui.golden import from_form, keep_extras, suggest


def test_a_row_needs_both_its_question_and_its_answer() -> None:
    rows = from_form(["  How hot? ", "", ""], ["93 C", "", ""])
    assert rows == [{"question": "How hot?", "answer": "93 C"}]  # empty rows are dropped
    with pytest.raises(DataError) as error:
        from_form(["How long?"], [""])
    assert "'How long?' needs its right answer" in error.value.message and error.value.hint


def test_tags_the_form_does_not_show_are_kept() -> None:
    before = [{"question": "How hot?", "answer": "90 C", "tags": ["temperature"]}]
    after = keep_extras(before, [{"question": "How hot?", "answer": "93 C"}])
    assert after == [{"question": "How hot?", "answer": "93 C", "tags": ["temperature"]}]


def test_picks_take_each_document_in_turn_and_leave_kept_pairs() -> None:
    pairs = [
        Pair("a1", "Qa1", "A", "a.pdf", "as generated"),
        Pair("a2", "Qa2", "A", "a.pdf", "as generated"),
        Pair("a3", "Qa3", "A", "a.pdf", "approved"),
        Pair("b1", "Qb1", "B", "b.pdf", "edited"),
        Pair("b2", "Qb2", "B", "b.pdf", "as generated"),
        Pair("b3", "Qb3", "B", "b.pdf", "deleted"),
        Pair("c1", "Asked", "C", "c.pdf", "as generated"),
    ]
    chosen = suggest(pairs, {"Asked"}, 3)
    assert [p.id for p in chosen] == ["a1", "b2", "a2"]
