"""Document structure for the offline generator: sections under headings, sentences, cloze gaps.

Pure text functions with no randomness: the same chunk always yields the same questions. This
is a template generator, not a language model; it exists so the demo and tests run without a
key or a server, and says so wherever its output appears.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
STOPWORDS = frozenset(
    "about above after again against because been before being below between both could does doing down during each "
    "from further have having here into itself just more most much only other over same should some such than that "
    "their them then there these they this those through under until very what when where which while will with "
    "would your yours also make makes made every many often usually always never".split()
)
# Opposites a flawed answer swaps in: plausible wording, wrong advice.
OPPOSITES = {
    "finer": "coarser", "coarser": "finer", "more": "less", "less": "more", "higher": "lower", "lower": "higher",
    "longer": "shorter", "shorter": "longer", "increase": "decrease", "decrease": "increase", "before": "after",
    "after": "before", "hotter": "colder", "colder": "hotter", "faster": "slower", "slower": "faster",
    "always": "never", "never": "always", "fresh": "stale", "clean": "dirty", "fine": "coarse", "coarse": "fine",
}  # fmt: skip


@dataclass(frozen=True)
class Section:
    heading: str | None
    body: str


def sections(text: str) -> list[Section]:
    """Markdown sections: each heading with the text under it; text before any heading has none."""
    found: list[Section] = []
    heading: str | None = None
    lines: list[str] = []
    for line in text.split("\n"):
        match = _HEADING.match(line)
        if match:
            if heading is not None or "".join(lines).strip():
                found.append(Section(heading, "\n".join(lines).strip()))
            heading, lines = match.group(1).strip(), []
        else:
            lines.append(line)
    if heading is not None or "".join(lines).strip():
        found.append(Section(heading, "\n".join(lines).strip()))
    return [s for s in found if s.body]


def sentences(text: str) -> list[str]:
    """Sentences of a body, list markers stripped, one-word fragments dropped."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        joined = " ".join(
            _LIST_MARK.sub("", line).strip() for line in paragraph.split("\n") if line.strip()
        )
        out.extend(s.strip() for s in _SENTENCE_END.split(joined) if len(s.split()) > 2)
    return out


def topic(section: Section) -> str:
    """What a section is about: its heading, else the first words of its first sentence."""
    if section.heading:
        return section.heading.rstrip(":?.!")
    words = (sentences(section.body) or [section.body])[0].split()[:6]
    return " ".join(words).rstrip(",;:.!?")


def lower_first(text: str) -> str:
    """A heading as the subject of a sentence: Title Case words lowered, acronyms (PID) kept."""
    return " ".join(
        w.lower() if w[:1].isupper() and (w[1:].islower() or len(w) == 1) else w
        for w in text.split(" ")
        if w
    )


def question_for(section: Section, index: int) -> str:
    """A question a heading asks: itself when it is one, else one of a few phrasings."""
    subject = topic(section)
    if section.heading and section.heading.rstrip().endswith("?"):
        return section.heading.strip()
    if not section.heading:
        return f"What does the text say about {lower_first(subject)}?"
    phrasings = ("What should I know about {}?", "Can you explain {}?", "How should I approach {}?")
    return phrasings[index % len(phrasings)].format(lower_first(subject))


def summary(body: str, limit: int = 700) -> str:
    """The first sentences of a body, up to limit characters (at least one sentence)."""
    picked: list[str] = []
    for sentence in sentences(body) or [body.strip()]:
        if picked and len(" ".join(picked)) + len(sentence) + 1 > limit:
            break
        picked.append(sentence)
    return " ".join(picked)


def cloze(sentence: str) -> tuple[str, str] | None:
    """(sentence with its key word blanked, the word): a number if there is one, else the longest content word."""
    if len(sentence.split()) < 6:
        return None
    number = _NUMBER.search(sentence)
    if number:
        word = number.group(0)
        start, end = number.span()
    else:
        words = [
            m
            for m in _WORD.finditer(sentence)
            if m.group(0).lower() not in STOPWORDS and m.start() > 0
        ]
        if not words:
            return None
        best = max(words, key=lambda m: (len(m.group(0)), -m.start()))
        word, (start, end) = best.group(0), best.span()
    return f"{sentence[:start]}____{sentence[end:]}", word


def flawed(answer: str) -> str:
    """A plausible but wrong version of an answer: numbers changed, advice reversed, or made vague."""
    changed = _NUMBER.sub(lambda m: _wrong_number(m.group(0)), answer, count=2)
    if changed != answer:
        return changed

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        other = OPPOSITES[word.lower()]
        return other.capitalize() if word[0].isupper() else other

    pattern = re.compile(r"\b(" + "|".join(OPPOSITES) + r")\b", re.IGNORECASE)
    changed = pattern.sub(swap, answer, count=2)
    if changed != answer:
        return changed
    first = (sentences(answer) or [answer])[0]
    return (
        f"{first.split(',')[0].rstrip('.')}. Beyond that it does not really matter; any approach "
        "works about equally well."
    )


def _wrong_number(text: str) -> str:
    value = float(text.replace(",", "."))
    wrong = value * 3 + 1 if value < 50 else value / 3
    return str(int(round(wrong))) if "." not in text and "," not in text else f"{wrong:.1f}"
