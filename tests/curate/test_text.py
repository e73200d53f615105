"""Which text of a record is compared, and the normalization behind exact duplicates."""

from __future__ import annotations

from opensem.curate.text import (
    answer_of,
    field_text,
    full_text,
    instruction_of,
    normalized_digest,
    snippet,
    words,
)
from opensem.data.formats import make_record

CHAT = make_record(
    "a.jsonl",
    messages=[
        {"role": "system", "content": "You are a barista."},
        {"role": "user", "content": "Why is my shot sour?"},
        {"role": "assistant", "content": "Grind finer."},
    ],
)
DOC = make_record("a.md", text="Crema is the foam on an espresso.")
PREF = make_record(
    "a.jsonl", prompt="Tamp pressure?", chosen="About 15 kg.", rejected="As hard as you can."
)


def test_instruction_and_answer_per_kind() -> None:
    assert (
        instruction_of(CHAT) == "Why is my shot sour?"
    )  # a shared system prompt would make every chat alike
    assert answer_of(CHAT) == "Grind finer."
    assert field_text(CHAT, "instruction_and_answer") == "Why is my shot sour?\nGrind finer."
    assert (
        field_text(DOC, "instruction") == field_text(DOC, "instruction_and_answer") == DOC["text"]
    )
    assert (instruction_of(PREF), answer_of(PREF)) == ("Tamp pressure?", "About 15 kg.")


def test_full_text_is_everything_trained_on() -> None:
    assert full_text(CHAT) == "You are a barista.\nWhy is my shot sour?\nGrind finer."
    assert full_text(PREF) == "Tamp pressure?\nAbout 15 kg.\nAs hard as you can."
    system_only = make_record(
        "a",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "assistant", "content": "Ok."},
        ],
    )
    assert instruction_of(system_only) == "Be brief."


def test_normalized_digest_ignores_case_space_and_unicode_form() -> None:
    a = normalized_digest("Why is my  SHOT\tsour?\n")
    assert a == normalized_digest("why is my shot sour?")
    assert normalized_digest("ｗｈｙ is my shot sour?") == a  # full-width letters: NFKC
    assert normalized_digest("why is my shot sour") != a  # punctuation is content


def test_words_and_snippets() -> None:
    assert words("Don't over-extract: 9 BAR!") == ["don", "t", "over", "extract", "9", "bar"]
    assert snippet("a\n b", 10) == "a b"
    assert snippet("x" * 50, 10) == "x" * 9 + "…"


def test_kto_feedback_records_compare_prompt_and_completion() -> None:
    feedback = make_record(
        "a.jsonl", prompt="Best water temperature?", completion="Around 93 C.", label=True
    )
    assert (instruction_of(feedback), answer_of(feedback)) == (
        "Best water temperature?",
        "Around 93 C.",
    )
    assert field_text(feedback, "instruction_and_answer") == "Best water temperature?\nAround 93 C."
    assert full_text(feedback) == "Best water temperature?\nAround 93 C."
