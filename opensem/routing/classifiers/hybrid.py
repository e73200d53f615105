"""The hybrid classifier: keywords as the fast path, the neural classifier otherwise.

When the keyword classifier is at least keyword_threshold sure, its answer stands (microseconds,
no embedding). Otherwise the neural classifier scores every expert. Where no keyword matched, its
answer stands as it is: silence from keywords is no evidence against an expert, since most people
do not use an expert's words. Where keywords matched, their shares and the neural probabilities
are combined with the configured weights; the neural classifier's "none of these" share is
weighed the same way, so a query it finds unrelated needs keyword evidence to get an expert.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from opensem.routing.classifiers import CLASSIFIERS
from opensem.routing.classifiers.base import Decision, decide
from opensem.routing.classifiers.keyword import KeywordClassifier, KeywordOptions
from opensem.routing.classifiers.neural import NeuralClassifier, NeuralOptions
from opensem.settings.fields import Section, invalid

if TYPE_CHECKING:
    from opensem.routing.registry import Expert


class HybridOptions(Section):
    type: Literal["hybrid"] = "hybrid"
    keyword_weight: float = Field(
        0.4, ge=0, le=1, description="Weight of the keyword shares in the combined score."
    )
    neural_weight: float = Field(
        0.6, ge=0, le=1, description="Weight of the neural probabilities in the combined score."
    )
    keyword_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Keyword confidence from which the keyword answer stands alone (the fast path).",
    )
    threshold: float = Field(
        0.4, ge=0, le=1, description="Combined confidence below which no expert is named."
    )
    keyword: KeywordOptions = Field(
        default_factory=KeywordOptions, description="Options of the keyword classifier inside."
    )
    neural: NeuralOptions = Field(
        default_factory=NeuralOptions, description="Options of the neural classifier inside."
    )

    @model_validator(mode="after")
    def _weights(self) -> HybridOptions:
        if self.keyword_weight + self.neural_weight <= 0:
            raise invalid("keyword_weight and neural_weight cannot both be 0")
        return self


@CLASSIFIERS.register
class HybridClassifier:
    name = "hybrid"
    Options = HybridOptions

    def __init__(
        self, options: HybridOptions, experts: list[Expert], cache_dir: Path | None = None
    ) -> None:
        self.options = options
        self.keyword = KeywordClassifier(options.keyword, experts)
        self.neural = NeuralClassifier(options.neural, experts, cache_dir)
        self.priorities = {expert.name: expert.priority for expert in experts}

    def add_expert(self, expert: Expert) -> None:
        """Learn an expert's keywords and its questions."""
        self.keyword.add_expert(expert)
        self.neural.add_expert(expert)
        self.priorities[expert.name] = expert.priority

    def remove_expert(self, name: str) -> None:
        """Forget an expert in both parts."""
        self.keyword.remove_expert(name)
        self.neural.remove_expert(name)
        self.priorities.pop(name, None)

    def experts(self) -> list[str]:
        """Names of the experts it routes to."""
        return self.neural.experts()

    def train(self, labelled: list[tuple[str, str]]) -> None:
        """Train the neural part on (query, expert) examples."""
        self.neural.train(labelled)

    def classify_batch(self, queries: list[str]) -> list[Decision]:
        """Keywords where they fire, else the neural answer."""
        decisions: list[Decision | None] = []
        for query in queries:
            fast = self.keyword.classify(query)
            decisions.append(
                fast
                if fast.expert is not None and fast.confidence >= self.options.keyword_threshold
                else None
            )
        slow = [index for index, decision in enumerate(decisions) if decision is None]
        for index, neural in zip(slow, self.neural.classify_batch([queries[i] for i in slow])):
            decisions[index] = self._combine(self.keyword.classify(queries[index]), neural)
        return [d for d in decisions if d is not None]

    def _combine(self, keyword: Decision, neural: Decision) -> Decision:
        if not any(keyword.scores.values()):
            return Decision(
                neural.expert, neural.confidence, neural.scores, neural.runner_up, "hybrid"
            )
        total = self.options.keyword_weight + self.options.neural_weight
        names = set(keyword.scores) | set(neural.scores)
        scores = {
            name: (
                self.options.keyword_weight * keyword.scores.get(name, 0.0)
                + self.options.neural_weight * neural.scores.get(name, 0.0)
            )
            / total
            for name in names
        }
        unrelated = (
            self.options.neural_weight * (1.0 - sum(neural.scores.values())) / total
        )  # the neural "none of these" share
        decision = decide(scores, self.options.threshold, self.priorities, "hybrid")
        if decision.expert is not None and unrelated >= decision.confidence:
            return Decision(None, decision.confidence, scores, decision.expert, "hybrid")
        return decision

    def classify(self, query: str) -> Decision:
        """The expert for one query, or none."""
        return self.classify_batch([query])[0]
