"""Words in normal form: one spelling, one stem."""

from __future__ import annotations

import pytest

from opensem.routing.words import normal_word, normal_words


@pytest.mark.parametrize(
    "variants",
    [
        ("fertilise", "fertiliser", "fertilizer", "fertilizing"),
        ("tyre", "tyres", "tire", "tires"),
        ("shot", "shots"),
        ("colour", "color", "colours"),
        ("centre", "center"),
        ("repot", "repotted", "repotting"),
    ],
)
def test_spellings_and_inflections_share_one_form(variants: tuple[str, ...]) -> None:
    assert len({normal_word(word) for word in variants}) == 1


def test_words_split_on_punctuation_and_keep_different_words_apart() -> None:
    assert normal_words("E-bike: tyres!") == ["e", "bike", "tire"]
    assert normal_word("pot") != normal_word("plant") and normal_word("Shot") == normal_word("shot")
