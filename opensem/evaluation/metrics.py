"""The metric catalogue and the text metrics that compare a generated answer with a reference.

Every metric has a dotted name `<set>.<measure>`: `test.*` is measured on the held-out test
split, `golden.*` on the golden set, `safety.*` on the refusal prompts. The catalogue says which
direction is better, which is what gates and report deltas need. Text metrics follow SQuAD for
exact match and token F1 (lowercase, punctuation and articles removed) and Lin (2004) for ROUGE-L
(F-measure of the longest common token subsequence).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Needs = Literal["golden", "judge", "refusals", "quantized", "weights", "knowledge"]
DIGITS = 6  # rounding of reported floats, so reports are byte-stable


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means and which way is better."""

    name: str
    label: str
    higher_is_better: bool
    needs: tuple[Needs, ...] = ()

    @property
    def set(self) -> str:
        """The set the metric is measured on: test, golden or safety."""
        return self.name.split(".", 1)[0]


CATALOGUE: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("test.loss", "held-out loss", False, ("weights",)),
        MetricSpec("test.perplexity", "held-out perplexity", False, ("weights",)),
        MetricSpec("test.exact_match", "test exact match", True),
        MetricSpec("test.token_f1", "test token F1", True),
        MetricSpec("test.rouge_l", "test ROUGE-L", True),
        MetricSpec("test.judge_score", "test judge score (1-5)", True, ("judge",)),
        MetricSpec("golden.loss", "golden loss", False, ("golden", "weights")),
        MetricSpec("golden.perplexity", "golden perplexity", False, ("golden", "weights")),
        MetricSpec("golden.exact_match", "golden exact match", True, ("golden",)),
        MetricSpec("golden.token_f1", "golden token F1", True, ("golden",)),
        MetricSpec("golden.rouge_l", "golden ROUGE-L", True, ("golden",)),
        MetricSpec("golden.judge_score", "golden judge score (1-5)", True, ("golden", "judge")),
        MetricSpec("safety.refusal_rate", "safety rate (share refused)", True, ("refusals",)),
        # Of the quantize stage, the worst format: perplexity change (quantized - unquantized) / unquantized.
        MetricSpec(
            "quantized.perplexity_change",
            "perplexity change by quantizing (worst format)",
            False,
            ("quantized",),
        ),
        MetricSpec(
            "quantized.compression_ratio",
            "compression ratio of quantizing (worst format)",
            True,
            ("quantized",),
        ),
        # Of the ground stage (opensem.knowledge.grounding), on the golden set.
        MetricSpec("knowledge.recall_at_k", "retrieval recall@k", True, ("knowledge",)),
        MetricSpec("knowledge.mrr", "retrieval MRR", True, ("knowledge",)),
        MetricSpec("knowledge.token_f1", "token F1 of expert + retrieval", True, ("knowledge",)),
        MetricSpec(
            "knowledge.retrieval_gain",
            "token F1 that retrieval adds to the expert",
            True,
            ("knowledge",),
        ),
        MetricSpec(
            "knowledge.citation_precision", "cited chunks holding the answer", True, ("knowledge",)
        ),
        MetricSpec(
            "knowledge.faithfulness",
            "judge's faithfulness to the sources (1-5)",
            True,
            ("knowledge", "judge"),
        ),
    )
}

# The headline "accuracy", first measured of these: the judge when there is one, else token F1.
ACCURACY_ORDER = ("golden.judge_score", "golden.token_f1", "test.judge_score", "test.token_f1")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_WORD = re.compile(r"[a-z0-9]+")


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, no punctuation, no articles, single spaces."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalized answers are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall over the normalized answers (bag of tokens)."""
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def lcs_length(first: list[str], second: list[str]) -> int:
    """Length of the longest common subsequence, in O(len(first) * len(second)) time and O(len(second)) memory."""
    if len(second) > len(first):
        first, second = second, first
    row = [0] * (len(second) + 1)
    for token in first:
        previous = 0  # row[j - 1] of the previous row
        for j, other in enumerate(second, start=1):
            current = row[j]
            row[j] = previous + 1 if token == other else max(row[j], row[j - 1])
            previous = current
    return row[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (beta 1) over lowercase alphanumeric tokens, as rouge-score computes it without stemming."""
    predicted, wanted = _WORD.findall(prediction.lower()), _WORD.findall(reference.lower())
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = lcs_length(predicted, wanted)
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def text_scores(prediction: str, reference: str) -> dict[str, float]:
    """Exact match, token F1 and ROUGE-L of one answer."""
    return {
        "exact_match": exact_match(prediction, reference),
        "token_f1": token_f1(prediction, reference),
        "rouge_l": rouge_l(prediction, reference),
    }


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that were measured; None when none was."""
    measured = [value for value in values if value is not None]
    return sum(measured) / len(measured) if measured else None


def improvement(name: str, base: float, tuned: float) -> float:
    """How much better tuned is than base in the metric's own units (positive = better)."""
    return tuned - base if CATALOGUE[name].higher_is_better else base - tuned
