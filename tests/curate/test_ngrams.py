"""The n-gram index: leaks of test and golden items are found word for word, and nothing else is."""

from __future__ import annotations

from opensem.curate.ngrams import NgramIndex, Reference

GOLDEN = (
    "How many grams of ground coffee go into a standard double espresso basket at home? "
    "Usually between eighteen and twenty grams, weighed on a scale."
)


def test_a_planted_13_gram_is_caught_and_clean_texts_are_not() -> None:
    index = NgramIndex([Reference("golden", "g1", GOLDEN)], n=13)
    planted = "Tips: How many GRAMS of ground coffee go into a standard double-espresso basket at home, you ask."
    clean = "Dose eighteen grams of coffee for a double shot and weigh it on a scale at home."
    hit, miss = index.overlaps([planted, clean])
    assert miss is None
    assert (
        hit is not None and hit.reference == 0 and hit.shared == 3
    )  # 15 shared words hold three 13-grams
    assert hit.gram == "how many grams of ground coffee go into a standard double espresso basket"
    assert 0 < hit.containment < 1


def test_twelve_shared_words_are_not_a_13_gram() -> None:
    index = NgramIndex([Reference("golden", "g1", GOLDEN)], n=13)
    assert index.overlaps(
        ["how many grams of ground coffee go into a standard double espresso"]
    ) == [None]


def test_short_references_count_whole_when_long_enough() -> None:
    refs = [
        Reference("golden", "q", "Why does my espresso taste sour and thin?"),
        Reference("golden", "tiny", "What is crema?"),
    ]
    index = NgramIndex(refs, n=13)
    assert index.unchecked == 1  # three words: too short to tell a leak from a common phrase
    found = index.overlaps(
        [
            "Customer asked: why does my espresso taste sour and thin? We said grind finer.",
            "What is crema? Foam.",
        ]
    )
    assert found[0] is not None and found[0].containment == 1.0
    assert found[1] is None


def test_grams_never_span_two_texts() -> None:
    index = NgramIndex([Reference("test", "t", GOLDEN)], n=13)
    first, second = (
        "Notes. How many grams of ground coffee go",
        "into a standard double espresso basket at home",
    )
    assert index.overlaps([first, second]) == [None, None]
    assert index.overlaps([f"{first} {second}"])[0] is not None


def test_the_reference_most_contained_wins() -> None:
    longer = GOLDEN + " " + " ".join(f"word{i}" for i in range(40))
    index = NgramIndex([Reference("test", "long", longer), Reference("golden", "g", GOLDEN)], n=13)
    (hit,) = index.overlaps([GOLDEN])
    assert hit is not None and index.references[hit.reference].id == "g" and hit.containment == 1.0
