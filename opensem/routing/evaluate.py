"""How well a classifier routes.

Without a question file: each expert's golden questions, split in two by a digest of the question
(stable, not by position), one half to train on and the other to score. With one (`route eval
--questions`, a JSONL of `{"question", "expert"}` where expert null marks an off-topic question):
the classifier trains on every golden question, as the router does, and is scored on the file.

Accuracy counts a question routed to no expert as wrong; an off-topic question is right only when
routed to no expert. The confusion table has a `(none)` column and an `(off-topic)` row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensem.core.digests import sha256_text
from opensem.errors import Location, UsageError
from opensem.routing.registry import Expert

NONE = "(none)"
OFF_TOPIC = "(off-topic)"


def golden_questions(expert: Expert) -> list[str]:
    """An expert's golden questions, where its manifest has a golden set."""
    from opensem.evaluation.items import load_golden

    if not expert.golden:
        raise UsageError(
            f"expert {expert.name!r} has no golden set",
            Location(key=f"experts.{expert.name}.golden"),
            "set `golden:` to its golden jsonl (expert add fills it from the manifest)",
        )
    return [item.question for item in load_golden(Path(expert.golden))]


def held_out_split(
    experts: list[Expert], train_share: float = 0.5
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test) lists of (question, expert): a question lands in train when its digest says so."""
    train: list[Any] = []
    test: list[Any] = []
    for expert in experts:
        for question in golden_questions(expert):
            bucket = int(sha256_text(question)[:8], 16) / 0xFFFFFFFF
            (train if bucket < train_share else test).append((question, expert.name))
    return train, test


def load_questions(path: Path, experts: list[Expert]) -> list[tuple[str, str | None]]:
    """(question, expert name or None) of a held-out question file; a label may be an expert's name or job_id."""
    from opensem.data.records import read_records

    names = {expert.name: expert.name for expert in experts} | {
        expert.job_id: expert.name for expert in experts if expert.job_id
    }

    def problem(item: dict[str, Any]) -> str | None:
        if not isinstance(item.get("question"), str) or not item["question"].strip():
            return 'a line needs a non-empty "question"'
        label = item.get("expert")
        return (
            f"expert {label!r} is not in the registry (experts: {', '.join(sorted(names))})"
            if label is not None and label not in names
            else None
        )

    records = read_records(
        path,
        problem,
        'each line is {"question": ..., "expert": NAME, or null for an off-topic question}',
        allow_empty=False,
    )
    return [
        (item["question"], None if item.get("expert") is None else names[item["expert"]])
        for item in records.records
    ]


@dataclass
class Scores:
    classifier: str
    correct: int = 0
    total: int = 0
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)  # true -> predicted -> count
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (question, true, predicted)

    p50_ms: float = 0.0  # one query at a time

    def rate(self, truth: str) -> float:
        """Share of truth's questions routed right (for OFF_TOPIC: routed to no expert)."""
        row = self.confusion.get(truth, {})
        total = sum(row.values())
        return row.get(NONE if truth == OFF_TOPIC else truth, 0) / total if total else 0.0

    @property
    def in_domain(self) -> tuple[int, int]:
        """(right, total) over the in-domain questions."""
        rows = [row for truth, row in self.confusion.items() if truth != OFF_TOPIC]
        return sum(
            row.get(truth, 0) for truth, row in self.confusion.items() if truth != OFF_TOPIC
        ), sum(sum(row.values()) for row in rows)

    @property
    def accuracy(self) -> float:
        """Share of in-domain questions routed to the right expert."""
        right, total = self.in_domain
        return right / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The scores as JSON."""
        right, total = self.in_domain
        return {
            "classifier": self.classifier,
            "accuracy": round(self.accuracy, 4),
            "correct": right,
            "total": total,
            "per_expert": {
                truth: round(self.rate(truth), 4) for truth in self.confusion if truth != OFF_TOPIC
            },
            "off_topic_rejected": round(self.rate(OFF_TOPIC), 4)
            if OFF_TOPIC in self.confusion
            else None,
            "p50_ms": round(self.p50_ms, 2),
            "confusion": self.confusion,
            "misses": [{"question": q, "expert": t, "routed_to": p} for q, t, p in self.misses],
        }


def score(classifier: Any, test: list[tuple[str, str | None]]) -> Scores:
    """Route every test question at once and count what went where; then time single queries."""
    import time

    result = Scores(classifier.name)
    decisions = classifier.classify_batch([question for question, _ in test])
    for (question, label), decision in zip(test, decisions):
        truth, predicted = label or OFF_TOPIC, decision.expert or NONE
        row = result.confusion.setdefault(truth, {})
        row[predicted] = row.get(predicted, 0) + 1
        result.total += 1
        if predicted == (label or NONE):
            result.correct += 1
        else:
            result.misses.append((question, truth, predicted))
    timings = []
    for question, _ in test[:50]:
        started = time.perf_counter()
        classifier.classify(question + " ?")  # a query not in the classifier's cache
        timings.append((time.perf_counter() - started) * 1000)
    result.p50_ms = sorted(timings)[len(timings) // 2] if timings else 0.0
    return result


def confusion_table(scores: Scores, experts: list[str]) -> Any:
    """A rich table: true expert per row, routed-to per column."""
    from rich.table import Table

    columns = [*experts, NONE]
    right, total = scores.in_domain
    table = Table(
        title=f"{scores.classifier}: {right}/{total} = {scores.accuracy:.1%} in domain",
        title_justify="left",
    )
    table.add_column("expert \\ routed to")
    for column in columns:
        table.add_column(column, justify="right")
    for truth in [*experts, OFF_TOPIC]:
        row = scores.confusion.get(truth, {})
        if truth == OFF_TOPIC and not row:
            continue
        right_column = NONE if truth == OFF_TOPIC else truth
        table.add_row(
            truth,
            *[
                f"[bold]{row.get(c, 0)}[/]"
                if c == right_column
                else (str(row.get(c, 0)) if row.get(c, 0) else "·")
                for c in columns
            ],
        )
    return table


def summary_table(results: list[Scores], experts: list[str]) -> Any:
    """One row per classifier: accuracy per expert, in domain, off-topic rejected, p50 latency."""
    from rich.table import Table

    off_topic = any(OFF_TOPIC in r.confusion for r in results)
    table = Table(title="routing accuracy", title_justify="left")
    for column in (
        "classifier",
        *experts,
        "in domain",
        *(["off-topic rejected"] if off_topic else []),
        "p50 ms",
    ):
        table.add_column(column, justify="left" if column == "classifier" else "right")
    for r in results:
        table.add_row(
            r.classifier,
            *[f"{r.rate(e):.0%}" for e in experts],
            f"{r.accuracy:.1%}",
            *([f"{r.rate(OFF_TOPIC):.0%}"] if off_topic else []),
            f"{r.p50_ms:.1f}",
        )
    return table
