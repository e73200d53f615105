"""How well a classifier routes: each expert's golden questions, split in two by a digest of the
question (stable, not by position), one half to train on and the other to score.

A question's expert is the expert whose golden set it comes from. Accuracy counts a question
routed to no expert as wrong; the confusion table has a `(none)` column for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensem.build.digests import sha256_text
from opensem.errors import Location, UsageError
from opensem.routing.registry import Expert

NONE = "(none)"


def golden_questions(expert: Expert) -> list[str]:
    from opensem.evaluation.items import load_golden

    if not expert.golden:
        raise UsageError(f"expert {expert.name!r} has no golden set", Location(key=f"experts.{expert.name}.golden"),
                         "set `golden:` to its golden jsonl (expert add fills it from the manifest)")
    return [item.question for item in load_golden(Path(expert.golden))]


def held_out_split(experts: list[Expert], train_share: float = 0.5) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test) lists of (question, expert): a question lands in train when its digest says so."""
    train, test = [], []
    for expert in experts:
        for question in golden_questions(expert):
            bucket = int(sha256_text(question)[:8], 16) / 0xFFFFFFFF
            (train if bucket < train_share else test).append((question, expert.name))
    return train, test


@dataclass
class Scores:
    classifier: str
    correct: int = 0
    total: int = 0
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # true -> predicted -> count
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (question, true, predicted)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"classifier": self.classifier, "accuracy": round(self.accuracy, 4), "correct": self.correct, "total": self.total,
                "confusion": self.confusion, "misses": [{"question": q, "expert": t, "routed_to": p} for q, t, p in self.misses]}


def score(classifier: Any, test: list[tuple[str, str]]) -> Scores:
    """Route every test question at once and count what went where."""
    result = Scores(classifier.name)
    decisions = classifier.classify_batch([question for question, _ in test])
    for (question, truth), decision in zip(test, decisions):
        predicted = decision.expert or NONE
        row = result.confusion.setdefault(truth, {})
        row[predicted] = row.get(predicted, 0) + 1
        result.total += 1
        if predicted == truth:
            result.correct += 1
        else:
            result.misses.append((question, truth, predicted))
    return result


def confusion_table(scores: Scores, experts: list[str]) -> Any:
    """A rich table: true expert per row, routed-to per column."""
    from rich.table import Table

    columns = [*experts, NONE]
    table = Table(title=f"{scores.classifier}: {scores.correct}/{scores.total} = {scores.accuracy:.1%}", title_justify="left")
    table.add_column("expert \\ routed to")
    for column in columns:
        table.add_column(column, justify="right")
    for truth in experts:
        row = scores.confusion.get(truth, {})
        table.add_row(truth, *[f"[bold]{row.get(c, 0)}[/]" if c == truth else (str(row.get(c, 0)) if row.get(c, 0) else "·") for c in columns])
    return table
