"""Feedback becomes training data by the manifest's rules."""

from __future__ import annotations

import pytest

from opensem.feedback.records import FeedbackRecord
from opensem.feedback.rules import FeedbackConfig, to_training_records, use_for
from opensem.training.methods.base import FEEDBACK_SHAPES, PREFERENCE_SHAPES, SFT_SHAPES

FEEDBACK = [
    FeedbackRecord(
        prompt="Rest beans?",
        answer="One day.",
        edited="A week.",
        created="2026-01-01T00:00:00+00:00",
    ),
    FeedbackRecord(
        prompt="Rest beans?",
        answer="One day.",
        edited="Five to ten days.",
        created="2026-01-02T00:00:00+00:00",
    ),
    FeedbackRecord(prompt="Grind?", answer="Finer.", rating=5),
    FeedbackRecord(prompt="Grind?", answer="Coarser.", rating=1),
    FeedbackRecord(prompt="Grind?", answer="Whatever.", rating=3),
    FeedbackRecord(prompt="Milk?", answer="65 C.", rating=4),
    FeedbackRecord(prompt="Milk?", answer="65 C.", rating=4, tags=["again"]),
]


def test_auto_follows_the_training_method() -> None:
    assert use_for(FeedbackConfig(), SFT_SHAPES) == "sft"
    assert use_for(FeedbackConfig(), PREFERENCE_SHAPES) == "preference"
    assert use_for(FeedbackConfig(), FEEDBACK_SHAPES) == "kto"
    assert use_for(FeedbackConfig(use="kto"), SFT_SHAPES) == "kto"


def test_sft_takes_the_newest_edit_and_good_answers_once() -> None:
    records = to_training_records(FEEDBACK, FeedbackConfig(), "sft", "feedback")
    chats = sorted((r["messages"][0]["content"], r["messages"][1]["content"]) for r in records)
    assert chats == [("Grind?", "Finer."), ("Milk?", "65 C."), ("Rest beans?", "Five to ten days.")]
    every = to_training_records(
        FEEDBACK, FeedbackConfig(edits="all", dedupe=False), "sft", "feedback"
    )
    assert len(every) == 5 and {r["source"] for r in every} == {"feedback"}


def test_preference_pairs_from_edits_and_from_ratings_of_one_prompt() -> None:
    pairs = {
        (r["prompt"], r["chosen"], r["rejected"])
        for r in to_training_records(FEEDBACK, FeedbackConfig(), "preference", "feedback")
    }
    assert pairs == {
        ("Rest beans?", "Five to ten days.", "One day."),
        ("Grind?", "Finer.", "Coarser."),
    }  # a 3 is neither good nor bad


def test_kto_labels() -> None:
    labels = {
        (r["prompt"], r["completion"], r["label"])
        for r in to_training_records(FEEDBACK, FeedbackConfig(), "kto", "feedback")
    }
    assert ("Rest beans?", "Five to ten days.", True) in labels and (
        "Rest beans?",
        "One day.",
        False,
    ) in labels
    assert (
        ("Grind?", "Coarser.", False) in labels
        and ("Milk?", "65 C.", True) in labels
        and not any(c == "Whatever." for _, c, _ in labels)
    )
    strict = {
        (r["completion"], r["label"])
        for r in to_training_records(FEEDBACK, FeedbackConfig(min_good_rating=5), "kto", "feedback")
    }
    assert ("65 C.", True) not in strict


def test_bands_must_not_overlap() -> None:
    with pytest.raises(ValueError, match="must be below min_good_rating"):
        FeedbackConfig(min_good_rating=3, max_bad_rating=3)
