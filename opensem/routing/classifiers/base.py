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
        """The decision as JSON."""
        return {
            "expert": self.expert,
            "confidence": round(self.confidence, 4),
            "runner_up": self.runner_up,
            "classifier": self.classifier,
            "scores": {
                name: round(score, 4)
                for name, score in sorted(self.scores.items(), key=lambda kv: -kv[1])
            },
        }


class Classifier(Protocol):
    name: str

    def classify(self, query: str) -> Decision:
        """The expert for one query, or none."""

    def classify_batch(self, queries: list[str]) -> list[Decision]:
        """The expert for each query, in order."""

    def add_expert(self, expert: Expert) -> None:
        """Learn an expert (replacing one of the same name)."""

    def remove_expert(self, name: str) -> None:
        """Forget an expert."""

    def experts(self) -> list[str]:
        """Names of the experts it routes to."""

    def train(self, labelled: list[tuple[str, str]]) -> None:
        """Learn from (query, expert) examples."""


def decide(
    scores: dict[str, float],
    threshold: float,
    priorities: dict[str, int],
    classifier: str,
    confidence: float | None = None,
) -> Decision:
    """The best-scoring expert (priority breaks ties), or none below the threshold."""
    ranked = sorted(scores, key=lambda name: (-scores[name], -priorities.get(name, 0), name))
    if not ranked:
        return Decision(None, 0.0, {}, None, classifier)
    best = ranked[0]
    sure = scores[best] if confidence is None else confidence
    runner_up = ranked[1] if len(ranked) > 1 else None
    return Decision(
        best if sure >= threshold and scores[best] > 0 else None,
        sure,
        scores,
        runner_up,
        classifier,
    )
