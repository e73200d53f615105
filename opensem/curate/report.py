"""Reports of the curation stages: report.json, a readable report.md, and similarity histograms.

Floats are rounded (DIGITS) so that embeddings which differ in the last bits between machines do
not change a report's bytes; the PNG is drawn on a bare Agg figure without a timestamp.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensem.plotting import agg_figure

DIGITS = 4


@dataclass(frozen=True)
class Panel:
    """One histogram: the values, the threshold line, and what they are."""

    title: str
    xlabel: str
    values: Sequence[float]
    threshold: float | None = None


def rounded(value: float) -> float:
    """A float rounded for reports, so equal runs write equal bytes."""
    return round(float(value), DIGITS)


def plot_histograms(panels: list[Panel], path: Path) -> None:
    """Histograms side by side as a PNG; log counts, since near-duplicates are a thin tail."""
    with agg_figure(figsize=(6 * max(1, len(panels)), 3.6), dpi=100) as figure:
        for number, panel in enumerate(panels, start=1):
            axes = figure.add_subplot(1, max(1, len(panels)), number)
            values = [float(v) for v in panel.values]
            if values:
                low = min(0.0, min(values))
                axes.hist(values, bins=50, range=(low, 1.0), color="#4c72b0", log=True)
            else:
                axes.text(0.5, 0.5, "no values", ha="center", va="center", transform=axes.transAxes)
            if panel.threshold is not None:
                axes.axvline(
                    panel.threshold,
                    color="#c44e52",
                    linestyle="--",
                    linewidth=1.2,
                    label=f"threshold {panel.threshold:g}",
                )
                axes.legend(loc="upper left", fontsize=8)
            axes.set_title(panel.title, fontsize=10)
            axes.set_xlabel(panel.xlabel)
            axes.set_ylabel("records (log)")
            axes.grid(True, alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, format="png", metadata={"Software": None})


def write_report(out_dir: Path, report: dict[str, Any], markdown: str) -> None:
    """report.json (sorted keys, stable bytes) and report.md beside it."""
    text = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    (out_dir / "report.json").write_text(text + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(markdown.rstrip() + "\n", encoding="utf-8")


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table; pipes and newlines in cells are escaped so a row stays one row."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def quantiles(values: Sequence[float]) -> dict[str, float]:
    """Summary of a similarity distribution: min, median, p95, max (empty when there are no values)."""
    if not values:
        return {}
    ordered = sorted(float(v) for v in values)

    def at(q: float) -> float:
        return rounded(ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))])

    return {"min": at(0.0), "median": at(0.5), "p95": at(0.95), "max": at(1.0)}
