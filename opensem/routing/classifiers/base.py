"""What every classifier answers: an expert (or none) with a confidence, and each expert's score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from opensem.routing.registry import Expert


@dataclass(frozen=True)
class Decision:
    expert: str | None  # None: no expert is confident enough
    confidence: float  # in [0, 1]
    scores: dict[str, float] = field(default_factory=dict)  # each expert's share, in [0, 1]
    runner_up: str | None = None
    classifier: str = ""  # which classifier decided (hybrid: "keyword" or "neural")

    def as_dict(self) -> dict[str, object]:
        return {"expert": self.expert, "confidence": round(self.confidence, 4), "runner_up": self.runner_up, "classifier": self.classifier,
                "scores": {name: round(score, 4) for name, score in sorted(self.scores.items(), key=lambda kv: -kv[1])}}


class Classifier(Protocol):
    name: str

    def classify(self, query: str) -> Decision: ...

    def classify_batch(self, queries: list[str]) -> list[Decision]: ...

    def add_expert(self, expert: "Expert") -> None: ...

    def remove_expert(self, name: str) -> None: ...

    def experts(self) -> list[str]: ...

    def train(self, labelled: list[tuple[str, str]]) -> None: ...


def decide(scores: dict[str, float], threshold: float, priorities: dict[str, int], classifier: str, confidence: float | None = None) -> Decision:
    """The best-scoring expert (priority breaks ties), or none below the threshold."""
    ranked = sorted(scores, key=lambda name: (-scores[name], -priorities.get(name, 0), name))
    if not ranked:
        return Decision(None, 0.0, {}, None, classifier)
    best = ranked[0]
    sure = scores[best] if confidence is None else confidence
    runner_up = ranked[1] if len(ranked) > 1 else None
    return Decision(best if sure >= threshold and scores[best] > 0 else None, sure, scores, runner_up, classifier)
