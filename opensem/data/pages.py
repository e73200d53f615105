"""Running headers and footers: the lines a document repeats at the top or bottom of its pages.

A PDF's text layer carries them on every page ("Shared MIME-info Database", "Page 3 of 40"), and
left in they land in the middle of chunks, where they teach the model nothing and read as noise.
A line is running when it opens (or closes) at least half of the pages, and three or more, as the
same text; a short line (four words or fewer, "Page 3 of 40", "- 12 -") counts with its digits
blanked. It is dropped there and nowhere else, so a sentence that merely repeats in the body
stays, and numbered body lines ("Step 2: ...") are not taken for page numbers.
"""

from __future__ import annotations

import re
from collections import Counter

EDGE = 2  # lines at each end of a page where running lines sit
DIGITS = re.compile(r"\d+")


def _key(line: str, end: str) -> str:
    text = " ".join(line.split()).lower()
    return f"{end}:{DIGITS.sub('#', text) if len(text.split()) <= 4 else text}" if text else ""


def _edges(lines: list[str]) -> dict[int, str]:
    """{line index: "top" or "bottom"} for the lines at either end of a page."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return {**{i: "bottom" for i in filled[-EDGE:]}, **{i: "top" for i in filled[:EDGE]}}


def drop_running_lines(pages: list[str]) -> tuple[list[str], int]:
    """The pages without their running headers and footers, and how many lines were dropped."""
    if len(pages) < 3:
        return pages, 0
    split = [page.splitlines() for page in pages]
    seen: Counter[str] = Counter()
    for lines in split:
        seen.update({_key(lines[i], end) for i, end in _edges(lines).items()})
    running = {key for key, count in seen.items() if key and count >= max(3, len(pages) / 2)}
    if not running:
        return pages, 0
    kept_pages, dropped = [], 0
    for lines in split:
        edges = _edges(lines)
        kept = [
            line
            for i, line in enumerate(lines)
            if not (i in edges and _key(line, edges[i]) in running)
        ]
        dropped += len(lines) - len(kept)
        kept_pages.append("\n".join(kept))
    return kept_pages, dropped
