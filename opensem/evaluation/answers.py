"""Answers side by side: what the base model and the expert said to a few golden questions.

A table of metrics says how much better; three answers say what better means, and what the
expert still gets wrong. The rows are evaluate's predictions.jsonl; the choice is deterministic:
the two largest token-F1 gains, and the answer the expert did worst on compared with the base.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.text import Text


def pick_examples(rows: list[dict[str, Any]], count: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """(why, row) for up to count golden rows: the largest gains first, then the largest loss."""
    golden = [
        row for row in rows if row.get("set") == "golden" and "base" in row and "tuned" in row
    ]
    if not golden:
        return []

    def gain(row: dict[str, Any]) -> float:
        return float(row["tuned"]["scores"].get("token_f1", 0.0)) - float(
            row["base"]["scores"].get("token_f1", 0.0)
        )

    ranked = sorted(golden, key=lambda row: (-gain(row), row["id"]))
    chosen = [("gained most", row) for row in ranked[: max(count - 1, 1)]]
    worst = ranked[-1]
    if len(ranked) >= count and all(worst is not row for _, row in chosen):
        chosen.append(
            ("the expert's weakest, against the base" if gain(worst) < 0 else "gained least", worst)
        )
    return chosen


def side_by_side(predictions_file: Path, count: int = 3) -> Text | None:
    """The chosen answers as text, or None when there are no golden predictions."""
    try:
        rows = [
            json.loads(line)
            for line in Path(predictions_file).read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    except (OSError, ValueError):
        return None
    chosen = pick_examples(rows, count)
    if not chosen:
        return None
    total = sum(1 for row in rows if row.get("set") == "golden")
    text = Text(
        f"Answers to {len(chosen)} of {total} golden questions, base model and expert:\n",
        style="bold",
    )
    for why, row in chosen:
        base, tuned = row["base"], row["tuned"]
        f1 = f"token F1 {base['scores'].get('token_f1', 0):.2f} -> {tuned['scores'].get('token_f1', 0):.2f}"
        text.append(f"\nQ: {row['question']}", style="bold")
        text.append(f"  ({why}; {f1})\n", style="dim")
        for label, answer, style in (
            ("reference", row.get("reference", ""), "dim"),
            ("base", base["answer"], ""),
            ("expert", tuned["answer"], "green"),
        ):
            text.append(f"  {label:<9} ", style="bold")
            text.append(f"{_one_line(answer)}\n", style=style)
    return text


def _one_line(answer: str, limit: int = 240) -> str:
    flat = " ".join(str(answer).split()) or "(empty)"
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
