"""Words as the keyword classifier compares them: lower case, one spelling, one stem.

"Fertiliser", "fertilizers" and "fertilise" all become `fertil`; "tyres" and "tires" become
`tire`; "shots" becomes `shot`. British spellings are rewritten to American ones by a few suffix
rules (-ise, -yse, -our, -tre) and a short list of irregular pairs before the Snowball stemmer
runs, so both sides of a comparison always go through the same steps.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+")
_SPELLING = [
    (re.compile(r"^(\w{3,})is(e|es|ed|er|ers|ing|ation|ations)$"), r"\1iz\2"),
    (re.compile(r"^(\w{3,})ys(e|es|ed|er|ing)$"), r"\1yz\2"),
    (re.compile(r"^(\w{3,})our(s|ed|ing|ful|ite|ites)?$"), r"\1or\2"),
    (re.compile(r"^(\w{2,})tre(s|d)?$"), r"\1ter\2"),
]
_VARIANTS = {
    "tyre": "tire",
    "tyres": "tires",
    "grey": "gray",
    "mould": "mold",
    "mouldy": "moldy",
    "aluminium": "aluminum",
    "plough": "plow",
    "programme": "program",
    "leaves": "leaf",
    "shelves": "shelf",
    "knives": "knife",
    "mice": "mouse",
    "cheque": "check",
    "whisky": "whiskey",
    "pyjamas": "pajamas",
}


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65_536)
def normal_word(word: str) -> str:
    """One word's comparable form."""
    word = _VARIANTS.get(word.lower(), word.lower())
    for pattern, replacement in _SPELLING:
        word = pattern.sub(replacement, word)
    return str(_stemmer().stemWord(word))


def raw_words(text: str) -> list[str]:
    """The words of a text (letters and digits; punctuation and hyphens split)."""
    return _WORD.findall(text)


def normal_words(text: str) -> list[str]:
    """The text's words in normal form (stemmed, American spelling)."""
    return [normal_word(word) for word in raw_words(text)]
