"""Running lines: dropped at the edges of the pages they repeat on, kept in the body and in short documents."""

from __future__ import annotations

from opensem.data.pages import drop_running_lines


def test_a_line_opening_most_pages_goes_and_the_same_words_in_the_body_stay() -> None:
    body = ["Grind finer.", "Tamp level.", "Pull it.", "Taste it.", "Clean up."]
    pages = [f"ACME Manual\n{text}\n{i}" for i, text in enumerate(body, start=1)]
    pages[2] = "ACME Manual\nACME Manual is a fine name.\nACME Manual\nmore text\n3"
    kept, dropped = drop_running_lines(pages)
    assert kept[0] == "Grind finer." and dropped == 10  # 5 headers and 5 page numbers
    assert (
        kept[2] == "ACME Manual is a fine name.\nACME Manual\nmore text"
    )  # not at the top: the body's own


def test_short_documents_and_lines_on_few_pages_are_left_alone() -> None:
    assert drop_running_lines(["Title\nbody", "Title\nmore"]) == (["Title\nbody", "Title\nmore"], 0)
    pages = ["Intro\na", "b\nc", "d\ne", "f\ng"]
    assert drop_running_lines(pages) == (pages, 0)
