"""The keyword classifier: weighted words, phrases and regular expressions per expert.

Words and phrases are compared in a normal form (`routing/words.py`: one spelling, one stem), so
plurals, inflections and British or American spellings match. A compound written as one word
matches the phrase and the other way round ("inner tube" and "innertube", "handlebar" and "handle
bar"). Where matches of different experts overlap, the longest phrase wins: "moka pot" of one
expert silences "pot" of another.

An expert's score is the sum of the weights of its keywords found in the query (each keyword
counted once). Confidence is how much of all matched weight is this expert's (share) times how
much evidence there is (1 - 0.5^score: one keyword 0.5, two 0.75, three 0.875), so one stray word
is not a sure thing and a query matching two experts equally is not sure either. Microseconds per
query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from opensem.routing.classifiers import CLASSIFIERS
from opensem.routing.classifiers.base import Decision, decide
from opensem.routing.words import normal_word, raw_words
from opensem.settings.fields import Section

if TYPE_CHECKING:
    from opensem.routing.profile import Keyword
    from opensem.routing.registry import Expert


class KeywordOptions(Section):
    type: Literal["keyword"] = "keyword"
    threshold: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Confidence below which the keyword classifier names no expert.",
    )


@dataclass(frozen=True)
class _Phrase:
    """A plain keyword in normal form: its words, and the one word it makes when written together."""

    expert: str
    rule: int
    weight: float
    words: tuple[str, ...]
    joined: str


@dataclass(frozen=True)
class _Match:
    expert: str
    rule: int
    weight: float
    start: int
    end: int


@CLASSIFIERS.register
class KeywordClassifier:
    name = "keyword"
    Options = KeywordOptions

    def __init__(self, options: KeywordOptions, experts: list[Expert]) -> None:
        self.options = options
        self.phrases: dict[str, list[_Phrase]] = {}
        self.patterns: dict[str, list[tuple[int, re.Pattern[str], float]]] = {}
        self.priorities: dict[str, int] = {}
        for expert in experts:
            self.add_expert(expert)

    def add_expert(self, expert: Expert) -> None:
        """Compile an expert's keyword rules."""
        self.phrases[expert.name], self.patterns[expert.name] = [], []
        for index, rule in enumerate(expert.keyword_rules()):
            if rule.regex or rule.case_sensitive:
                self.patterns[expert.name].append((index, rule.compiled(), rule.weight))
            else:
                self.phrases[expert.name].append(_phrase(expert.name, index, rule))
        self.priorities[expert.name] = expert.priority

    def remove_expert(self, name: str) -> None:
        """Forget an expert's rules."""
        for table in (self.phrases, self.patterns, self.priorities):
            table.pop(name, None)

    def experts(self) -> list[str]:
        """Names of the experts it routes to."""
        return list(self.phrases)

    def train(self, labelled: list[tuple[str, str]]) -> None:
        """Keywords are written, not learned: nothing to fit."""

    def matches(self, query: str) -> list[_Match]:
        """Every phrase found in the query, longest first, without a shorter one of another expert overlapping it."""
        raw = raw_words(query)
        words = [normal_word(word) for word in raw]
        pairs = [normal_word(raw[i] + raw[i + 1]) for i in range(len(raw) - 1)]
        found = []
        for phrases in self.phrases.values():
            for phrase in phrases:
                size = len(phrase.words)
                for start in range(len(words)):
                    if tuple(words[start : start + size]) == phrase.words:
                        found.append(
                            _Match(phrase.expert, phrase.rule, phrase.weight, start, start + size)
                        )
                    elif size == 1 and start < len(pairs) and pairs[start] == phrase.words[0]:
                        found.append(
                            _Match(phrase.expert, phrase.rule, phrase.weight, start, start + 2)
                        )
                    elif size > 1 and words[start] == phrase.joined:
                        found.append(
                            _Match(phrase.expert, phrase.rule, phrase.weight, start, start + 1)
                        )
        kept: list[_Match] = []
        for match in sorted(found, key=lambda m: m.start - m.end):
            if not any(
                other.expert != match.expert
                and other.end - other.start > match.end - match.start
                and other.start < match.end
                and match.start < other.end
                for other in kept
            ):
                kept.append(match)
        return kept

    def weights(self, query: str) -> dict[str, float]:
        """Each expert's summed weight of keywords found in the query (each keyword once)."""
        found = {(match.expert, match.rule): match.weight for match in self.matches(query)}
        weights = {name: 0.0 for name in self.phrases}
        for (name, _), weight in found.items():
            weights[name] += weight
        for name, patterns in self.patterns.items():
            weights[name] += sum(weight for _, pattern, weight in patterns if pattern.search(query))
        return weights

    def classify(self, query: str) -> Decision:
        """The expert whose keywords weigh most in the query, or none."""
        weights = self.weights(query)
        total = sum(weights.values())
        if total <= 0:
            return Decision(None, 0.0, {name: 0.0 for name in weights}, None, self.name)
        shares = {name: weight / total for name, weight in weights.items()}
        best = max(weights, key=lambda name: (weights[name], self.priorities.get(name, 0)))
        confidence = shares[best] * (1 - 0.5 ** weights[best])
        return decide(shares, self.options.threshold, self.priorities, self.name, confidence)

    def classify_batch(self, queries: list[str]) -> list[Decision]:
        """The expert for each query, in order."""
        return [self.classify(query) for query in queries]


def _phrase(expert: str, index: int, rule: Keyword) -> _Phrase:
    raw = raw_words(rule.pattern)
    return _Phrase(
        expert,
        index,
        rule.weight,
        tuple(normal_word(word) for word in raw),
        normal_word("".join(raw)),
    )
