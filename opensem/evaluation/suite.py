"""One model over every item set: the evaluation the baseline and evaluate stages both run.

A side (one model's results) holds dotted metrics (`golden.token_f1`, `test.perplexity`, ...)
and one row per item with the answer and its scores. The model work (scoring token sequences,
generating answers) runs first; the judge then scores every answer of the side in one batch, so
its requests run concurrently and its cache sees them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opensem.core.stage import Progress
from opensem.evaluation.items import Item
from opensem.evaluation.metrics import DIGITS, mean, text_scores
from opensem.evaluation.safety import is_refusal
from opensem.training.generation import GenerationSettings, generate_answers

# Scores (question, reference, answer) triples 1 to 5; None where the judge gave no valid verdict.
JudgeFn = Callable[[list[tuple[str, str, str]]], list[int | None]]


@dataclass(frozen=True)
class EvalSets:
    """What one side is evaluated on; an empty part is skipped."""

    test_sequences: list[list[int]] = field(default_factory=list)  # token ids of every test record
    test_records: int = 0
    golden: list[Item] = field(default_factory=list)
    test: list[Item] = field(default_factory=list)  # the test split's questions
    safety: list[Item] = field(default_factory=list)

    def work(self, batch_size: int) -> int:
        """Progress units: scoring batches plus generated answers."""
        scored = _batch_count(len(self.test_sequences), batch_size) + _batch_count(
            len(self.golden), batch_size
        )
        return scored + len(self.golden) + len(self.test) + len(self.safety)


@dataclass
class Side:
    """One model's measurements: dotted metrics, counts and per-item rows keyed by "set:id"."""

    metrics: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    judge_invalid: int = 0

    def as_json(self) -> dict[str, Any]:
        """The side as JSON."""
        return {
            "metrics": self.metrics,
            "counts": self.counts,
            "items": self.items,
            "judge_invalid": self.judge_invalid,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Side:
        """A side from its JSON."""
        return cls(
            dict(data["metrics"]),
            dict(data["counts"]),
            dict(data["items"]),
            int(data.get("judge_invalid", 0)),
        )

    def merged(self, other: Side) -> Side:
        """This side's metrics and answers with other's added."""
        return Side(
            {**self.metrics, **other.metrics},
            {**self.counts, **other.counts},
            {**self.items, **other.items},
            self.judge_invalid + other.judge_invalid,
        )


def _batch_count(count: int, size: int) -> int:
    return (count + size - 1) // size


def token_nll(
    model: Any, sequences: list[list[int]], pad_id: int, batch_size: int, bar: Progress
) -> tuple[float, int]:
    """Summed next-token negative log-likelihood over every predicted token, and how many there were."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start : start + batch_size]
            width = max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                mask[row, : len(ids)] = 1
            logits = (
                model(input_ids=input_ids.to(device), attention_mask=mask.to(device))
                .logits.float()
                .cpu()
            )
            targets = input_ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)),
                targets.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total += float(loss)
            count += int((targets != -100).sum())
            bar.advance()
    return total, count


def _loss_metrics(prefix: str, total: float, count: int) -> dict[str, float]:
    loss = total / count
    return {
        f"{prefix}.loss": round(loss, DIGITS),
        f"{prefix}.perplexity": round(math.exp(loss), DIGITS),
    }


def golden_sequences(items: Sequence[Item], tokenizer: Any, max_length: int) -> list[list[int]]:
    """Golden question and answer rendered as one chat, as the train stage renders instruction records."""
    from opensem.training.data import encode_records

    records = [
        {"messages": [*item.messages, {"role": "assistant", "content": item.reference or ""}]}
        for item in items
    ]
    return [ids for ids in encode_records(records, tokenizer, max_length) if len(ids) > 1]


def run_side(
    model: Any, tokenizer: Any, sets: EvalSets, settings: GenerationSettings, bar: Progress
) -> Side:
    """Score and generate with one model; judge scores are added by judge_side."""
    side = Side()
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    if sets.test_sequences:
        total, count = token_nll(model, sets.test_sequences, pad_id, settings.batch_size, bar)
        side.metrics.update(_loss_metrics("test", total, count))
        side.counts.update({"test.records": sets.test_records, "test.tokens": count})
    sequences = (
        golden_sequences(sets.golden, tokenizer, settings.max_seq_length) if sets.golden else []
    )
    if sequences:
        total, count = token_nll(model, sequences, pad_id, settings.batch_size, bar)
        side.metrics.update(_loss_metrics("golden", total, count))
        side.counts["golden.tokens"] = count
    _answer(
        side,
        sets,
        lambda items: generate_answers(
            model, tokenizer, [item.messages for item in items], settings, bar
        ),
    )
    return side


def remote_side(answers_for: Callable[[Sequence[Item]], list[str]], sets: EvalSets) -> Side:
    """A model that only answers (through a provider): text scores and refusals, no perplexity."""
    side = Side()
    _answer(side, sets, answers_for)
    return side


def _answer(side: Side, sets: EvalSets, answers_for: Callable[[Sequence[Item]], list[str]]) -> None:
    for name, items in (("golden", sets.golden), ("test", sets.test), ("safety", sets.safety)):
        if not items:
            continue
        answers = answers_for(items)
        side.counts[f"{name}.items"] = len(items)
        for item, answer in zip(items, answers):
            row: dict[str, Any] = {"answer": answer}
            if item.reference is not None:
                row["scores"] = {
                    key: round(value, DIGITS)
                    for key, value in text_scores(answer, item.reference).items()
                }
            else:
                row["refused"] = is_refusal(answer)
            side.items[f"{name}:{item.id}"] = row
    _aggregate(side, sets)


def _aggregate(side: Side, sets: EvalSets) -> None:
    for name, items in (("golden", sets.golden), ("test", sets.test)):
        rows = [
            side.items[f"{name}:{item.id}"] for item in items if f"{name}:{item.id}" in side.items
        ]
        for metric in ("exact_match", "token_f1", "rouge_l", "judge_score"):
            value = mean(row.get("scores", {}).get(metric) for row in rows)
            if value is not None:
                side.metrics[f"{name}.{metric}"] = round(value, DIGITS)
    refusals = [row["refused"] for key, row in side.items.items() if key.startswith("safety:")]
    if refusals:
        side.metrics["safety.refusal_rate"] = round(sum(refusals) / len(refusals), DIGITS)


def judge_side(side: Side, items: Sequence[Item], judge: JudgeFn) -> None:
    """Add the judge's 1-5 score to every answered item with a reference; count invalid verdicts."""
    keyed = [
        (f"{item.set}:{item.id}", item)
        for item in items
        if item.reference is not None and f"{item.set}:{item.id}" in side.items
    ]
    verdicts = judge(
        [(item.question, str(item.reference), side.items[key]["answer"]) for key, item in keyed]
    )
    for (key, _), score in zip(keyed, verdicts):
        side.items[key]["scores"]["judge_score"] = score
    side.judge_invalid += sum(score is None for score in verdicts)
    by_set: dict[str, list[int | None]] = {}
    for (_, item), score in zip(keyed, verdicts):
        by_set.setdefault(item.set, []).append(score)
    for name, scores in by_set.items():
        value = mean(float(score) if score is not None else None for score in scores)
        if value is not None:
            side.metrics[f"{name}.judge_score"] = round(value, DIGITS)
        side.counts[f"{name}.judged"] = sum(score is not None for score in scores)
