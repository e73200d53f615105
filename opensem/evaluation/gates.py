"""Quality gates: thresholds from the manifest checked against the evaluation report.

A gate names a metric and exactly one rule: `min` or `max` bound the fine-tuned value;
`min_delta_vs_baseline` asks the fine-tuned model to beat the baseline (the base model) by at
least that much in the metric's good direction (lower for loss and perplexity, higher for the
rest), so `min_delta_vs_baseline: 0` means "no worse than the base model". A metric that was not
measured fails its gate: a gate that cannot be checked must not pass silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from opensem.errors import GateFailed
from opensem.evaluation.config import QualityGate
from opensem.evaluation.metrics import improvement
from opensem.evaluation.report import fmt


@dataclass(frozen=True)
class GateOutcome:
    metric: str
    rule: str
    threshold: float
    base: float | None
    tuned: float | None
    passed: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        """The outcome as JSON."""
        return asdict(self)


def check(gate: QualityGate, report: dict[str, Any]) -> GateOutcome:
    """One gate against the report's metrics."""
    name, rule, threshold = gate.metric, gate.rule, gate.threshold
    row = report["metrics"].get(name, {})
    base, tuned = row.get("base"), row.get("tuned")
    if tuned is None or (rule == "min_delta_vs_baseline" and base is None):
        return GateOutcome(name, rule, threshold, base, tuned, False, "not measured")
    if rule == "min":
        passed, detail = (
            tuned >= threshold,
            f"{fmt(name, tuned)} {'>=' if tuned >= threshold else '<'} {threshold:g}",
        )
    elif rule == "max":
        passed, detail = (
            tuned <= threshold,
            f"{fmt(name, tuned)} {'<=' if tuned <= threshold else '>'} {threshold:g}",
        )
    else:
        gain = round(improvement(name, float(base), tuned), 6)
        passed = gain >= threshold
        change = f"improved by {fmt(name, gain)}" if gain >= 0 else f"worse by {fmt(name, -gain)}"
        detail = f"{change} vs baseline, needs an improvement of at least {threshold:g}"
    return GateOutcome(name, rule, threshold, base, tuned, passed, detail)


def check_all(gates: list[QualityGate], report: dict[str, Any]) -> list[GateOutcome]:
    """Every gate's outcome on the report."""
    return [check(gate, report) for gate in gates]


def table(outcomes: list[GateOutcome]) -> list[str]:
    """A plain-text table of gate outcomes (errors are rendered without markup)."""
    header = ("metric", "rule", "baseline", "fine-tuned", "result")
    rows = [
        (
            o.metric,
            f"{o.rule} {o.threshold:g}",
            fmt(o.metric, o.base),
            fmt(o.metric, o.tuned),
            f"{'pass' if o.passed else 'FAIL'}: {o.detail}",
        )
        for o in outcomes
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in (header, *rows)
    ]


class GatesFailed(GateFailed):
    """One or more quality gates failed: the build is blocked and nothing is published."""

    def __init__(self, outcomes: list[GateOutcome]) -> None:
        failed = [o for o in outcomes if not o.passed]
        summary = "; ".join(f"{o.metric} {o.detail}" for o in failed)
        super().__init__(
            f"quality gate failed: {summary}",
            hint=(
                "nothing was published; improve the model, or change evaluation.gates in the "
                "manifest (training and evaluation stay cached)"
            ),
        )
        self.outcomes = outcomes

    def render(self) -> str:
        """Which gates failed and by how much, with what to do."""
        failed = sum(not o.passed for o in self.outcomes)
        head = (
            f"quality gate failed: {failed} of {len(self.outcomes)} "
            f"gate{'s' if len(self.outcomes) != 1 else ''} did not pass"
        )
        return "\n".join(
            [head, *(f"  {line}" for line in table(self.outcomes)), f"  hint: {self.hint}"]
        )
