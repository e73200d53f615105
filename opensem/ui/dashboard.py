"""The dashboard: metrics across releases, answers served, feedback over time, job history.

Everything is read from the project's files on each visit (registries, feedback and answer logs,
the job queue); the logs are only counted, so 10,000 feedback records cost a JSON parse each,
not a validation. Charts are small SVGs drawn here, no JavaScript library.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from opensem.core.files import StatMemo
from opensem.ui.experts import ReleaseRow, manifest_yaml, manifests, releases
from opensem.ui.jobs import JobQueue

CHART_METRIC = "golden.token_f1"


@dataclass
class ExpertStats:
    """One expert's history as the dashboard shows it."""

    name: str
    releases: list[ReleaseRow]  # oldest first
    feedback: list[tuple[str, int, float | None]] = field(default_factory=list)  # day, n, rating
    answers: list[tuple[str, int]] = field(default_factory=list)  # day, answers recorded
    edits: int = 0

    def chart(self) -> Markup:
        """The tuned model's CHART_METRIC across releases, with the base's as a dashed line."""
        tuned = [r.metrics.get(CHART_METRIC, {}).get("tuned") for r in self.releases]
        base = [r.metrics.get(CHART_METRIC, {}).get("base") for r in self.releases]
        return line_chart([v for v in tuned if v is not None], [v for v in base if v is not None])


def expert_stats(root: Path, manifest: Path) -> ExpertStats:
    """Releases, feedback and answers of one expert."""
    raw = manifest_yaml(manifest)
    name = str(raw.get("job_id") or manifest.stem)
    stats = ExpertStats(name, list(reversed(releases(root, raw))))
    folder = root / str((raw.get("feedback") or {}).get("path") or f"data/{name}/feedback")
    stats.feedback, stats.edits = _counted(folder / "feedback.jsonl", _feedback_days)
    stats.answers, _ = _counted(root / "data" / name / "answers" / "answers.jsonl", _days)
    return stats


Days = tuple[list[Any], int]


def _counted(path: Path, count: Callable[[Path], Days]) -> Days:
    """count(path), worked out again only after the log changed."""
    if not path.is_file():
        return [], 0
    return _COUNTED.get(path, count.__name__, lambda: count(path))


def _feedback_days(path: Path) -> Days:
    """(day, feedback, mean rating) per day, and how many answers were edited."""
    ratings: dict[str, list[int]] = defaultdict(list)
    counts: Counter[str] = Counter()
    edits = 0
    for row in _parse(path):
        day = str(row.get("created", ""))[:10]
        counts[day] += 1
        if isinstance(row.get("rating"), int):
            ratings[day].append(row["rating"])
        edits += bool(row.get("edited"))
    days = [
        (day, counts[day], sum(ratings[day]) / len(ratings[day]) if ratings[day] else None)
        for day in sorted(counts)
    ]
    return days, edits


def _days(path: Path) -> Days:
    """(day, records) per day."""
    return sorted(Counter(str(row.get("created", ""))[:10] for row in _parse(path)).items()), 0


def dashboard(root: Path, jobs: JobQueue) -> dict[str, Any]:
    """What the dashboard page shows."""
    recent = jobs.recent(limit=200)
    return {
        "experts": [expert_stats(root, manifest) for manifest in manifests(root)],
        "job_states": Counter(job.state for job in recent),
        "jobs": recent[:15],
    }


_COUNTED = StatMemo()


def _parse(path: Path) -> list[dict[str, Any]]:
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn line: `opensem feedback list` reports it
        if isinstance(row, dict):
            found.append(row)
    return found


def line_chart(values: list[float], baseline: list[float], width: int = 320) -> Markup:
    """An SVG line of values (and a dashed baseline) with its first and last value labelled."""
    if not values:
        return Markup('<span class="muted">no release yet</span>')
    height, pad = 90, 8
    everything = values + baseline
    low, high = min(everything), max(everything)
    span = (high - low) or 1.0

    def points(series: list[float]) -> str:
        step = (width - 2 * pad) / max(len(series) - 1, 1)
        return " ".join(
            f"{pad + i * step:.1f},{height - pad - (v - low) / span * (height - 2 * pad):.1f}"
            for i, v in enumerate(series)
        )

    dashed = (
        f'<polyline points="{points(baseline)}" fill="none" stroke="#9aa3ad" '
        'stroke-dasharray="4 3" stroke-width="1.5"/>'
        if baseline
        else ""
    )
    return Markup(
        f'<svg class="chart" width="{width}" height="{height}" role="img" '
        f'aria-label="{CHART_METRIC} over {len(values)} releases">{dashed}'
        f'<polyline points="{points(values)}" fill="none" stroke="#2d6cdf" stroke-width="2"/>'
        f'<text x="{pad}" y="12" font-size="11">{values[0]:.3g}</text>'
        f'<text x="{width - pad}" y="12" font-size="11" text-anchor="end">{values[-1]:.3g}</text>'
        "</svg>"
    )
