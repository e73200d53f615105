"""The keyword classifier: weighted words, phrases and regular expressions per expert.

An expert's score is the sum of the weights of its keywords found in the query. Confidence is how
much of all matched weight is this expert's (share) times how much evidence there is
(1 - 0.5^score: one keyword 0.5, two 0.75, three 0.875), so one stray word is not a sure thing and
a query matching two experts equally is not sure either. Microseconds per query.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from opensem.manifest.fields import Section
from opensem.routing.classifiers import CLASSIFIERS
from opensem.routing.classifiers.base import Decision, decide

if TYPE_CHECKING:
    from opensem.routing.registry import Expert


class KeywordOptions(Section):
    type: Literal["keyword"] = "keyword"
    threshold: float = Field(0.3, ge=0, le=1, description="Confidence below which the keyword classifier names no expert.")


@CLASSIFIERS.register
class KeywordClassifier:
    name = "keyword"
    Options = KeywordOptions

    def __init__(self, options: KeywordOptions, experts: list[Expert]) -> None:
        self.options = options
        self.rules: dict[str, list[tuple[re.Pattern[str], float]]] = {}
        self.priorities: dict[str, int] = {}
        for expert in experts:
            self.add_expert(expert)

    def add_expert(self, expert: Expert) -> None:
        self.rules[expert.name] = [(rule.compiled(), rule.weight) for rule in expert.keyword_rules()]
        self.priorities[expert.name] = expert.priority

    def remove_expert(self, name: str) -> None:
        self.rules.pop(name, None)
        self.priorities.pop(name, None)

    def experts(self) -> list[str]:
        return list(self.rules)

    def train(self, labelled: list[tuple[str, str]]) -> None:
        """Keywords are written, not learned: nothing to fit."""

    def weights(self, query: str) -> dict[str, float]:
        """Each expert's summed weight of keywords found in the query."""
        return {name: sum(weight for pattern, weight in rules if pattern.search(query)) for name, rules in self.rules.items()}

    def classify(self, query: str) -> Decision:
        weights = self.weights(query)
        total = sum(weights.values())
        if total <= 0:
            return Decision(None, 0.0, {name: 0.0 for name in weights}, None, self.name)
        shares = {name: weight / total for name, weight in weights.items()}
        best = max(weights, key=lambda name: (weights[name], self.priorities.get(name, 0)))
        confidence = shares[best] * (1 - 0.5 ** weights[best])
        return decide(shares, self.options.threshold, self.priorities, self.name, confidence)

    def classify_batch(self, queries: list[str]) -> list[Decision]:
        return [self.classify(query) for query in queries]
