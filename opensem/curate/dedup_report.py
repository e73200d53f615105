"""What the dedup stage tells its user: counts, the closest removed pairs, the near misses, a histogram.

Only what follows from the records and the settings goes into the files (so two runs give the
same bytes); how many embeddings came from the cache goes to the stage's metrics instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opensem.curate.config import DedupConfig
from opensem.curate.dedup import Duplicate, SemanticOutcome
from opensem.curate.report import (
    Panel,
    markdown_table,
    plot_histograms,
    quantiles,
    rounded,
    write_report,
)
from opensem.curate.text import snippet
from opensem.data.formats import record_kind

SHOWN_PAIRS = 20  # closest removed pairs listed
SHOWN_EDGE = 10  # borderline removals and near misses listed


def removed_rows(
    records: list[dict[str, Any]], texts: list[str], removed: dict[int, Duplicate]
) -> list[dict[str, Any]]:
    """One row per removed record, in input order: its id, why, and the kept record it duplicates."""
    return [
        {
            "id": records[i]["id"],
            "kind": record_kind(records[i]),
            "reason": removed[i].reason,
            "duplicate_of": records[removed[i].of]["id"],
            "similarity": rounded(removed[i].similarity),
            "text": snippet(texts[i]),
        }
        for i in sorted(removed)
    ]


def _pair(
    records: list[dict[str, Any]], texts: list[str], a: int, b: int, similarity: float
) -> dict[str, Any]:
    return {
        "similarity": rounded(similarity),
        "removed": {"id": records[a]["id"], "text": snippet(texts[a])},
        "kept": {"id": records[b]["id"], "text": snippet(texts[b])},
    }


def dedup_report(
    records: list[dict[str, Any]],
    texts: list[str],
    exact: dict[int, Duplicate],
    semantic: SemanticOutcome | None,
    params: DedupConfig,
    out_dir: Path,
) -> dict[str, Any]:
    """Write report.json, report.md and (with semantic search) similarity.png; return the stage metrics."""
    removed = dict(semantic.removed) if semantic else {}
    kinds: dict[str, dict[str, int]] = {}
    for index, record in enumerate(records):
        row = kinds.setdefault(
            record_kind(record), {"records": 0, "exact": 0, "semantic": 0, "kept": 0}
        )
        row["records"] += 1
        row["exact" if index in exact else "semantic" if index in removed else "kept"] += 1
    by_similarity = sorted(
        removed.items(), key=lambda item: (-item[1].similarity, records[item[0]]["id"])
    )
    closest = [_pair(records, texts, i, d.of, d.similarity) for i, d in by_similarity[:SHOWN_PAIRS]]
    rest = by_similarity[SHOWN_PAIRS:]  # those not listed among the closest
    borderline = [
        _pair(records, texts, i, d.of, d.similarity) for i, d in reversed(rest[-SHOWN_EDGE:])
    ]
    nearest = semantic.nearest if semantic else {}
    misses = sorted(
        ((sim, i, j) for i, (sim, j) in nearest.items() if i not in removed),
        key=lambda t: (-t[0], records[t[1]]["id"]),
    )
    misses = misses[:SHOWN_EDGE]
    report: dict[str, Any] = {
        "records": len(records),
        "kept": len(records) - len(exact) - len(removed),
        "removed": {
            "exact": len(exact),
            "semantic": len(removed),
            "total": len(exact) + len(removed),
        },
        "kinds": kinds,
        "settings": {
            "field": params.field,
            "exact": params.exact,
            "semantic": params.semantic,
            "threshold": params.threshold,
            "model": params.model,
        },
        "model_digest": semantic.model.digest if semantic and semantic.model else None,
        "search": semantic.searches if semantic else {},
        "closest_kept_similarity": quantiles([sim for sim, _ in nearest.values()]),
        "closest_pairs": closest,
        "borderline_pairs": borderline,
        "near_misses": [
            {
                "similarity": rounded(sim),
                "kept": {"id": records[i]["id"], "text": snippet(texts[i])},
                "closest": {"id": records[j]["id"], "text": snippet(texts[j])},
            }
            for sim, i, j in misses
        ],
    }
    if nearest:
        values = [sim for sim, _ in nearest.values()]
        title = "each record vs the closest kept record before it"
        plot_histograms(
            [Panel(title, "cosine similarity", values, params.threshold)],
            out_dir / "similarity.png",
        )
    write_report(out_dir, report, _markdown(report, bool(nearest)))
    return {
        "records": report["records"],
        "kept": report["kept"],
        "exact": len(exact),
        "semantic": len(removed),
        "search": ",".join(sorted({s["method"] for s in report["search"].values()})) or "none",
    }


def _markdown(report: dict[str, Any], plotted: bool) -> str:
    s = report["settings"]
    lines = [
        "# Deduplication report",
        "",
        f"{report['records']} records in, {report['kept']} kept: {report['removed']['exact']} exact duplicates "
        f"and {report['removed']['semantic']} near-duplicates removed.",
        "",
        f"Compared text: `{s['field']}`. Exact pass: {'on' if s['exact'] else 'off'}. Semantic pass: "
        + (
            f"on, `{s['model']}`, cosine similarity > {s['threshold']:g}."
            if s["semantic"]
            else "off."
        ),
        "",
        markdown_table(
            ["kind", "records", "exact", "semantic", "kept"],
            [[k, *v.values()] for k, v in sorted(report["kinds"].items())],
        ),
    ]
    sections = (
        ("Closest removed pairs", report["closest_pairs"], "removed", "kept"),
        (
            "Borderline removals (just above the threshold)",
            report["borderline_pairs"],
            "removed",
            "kept",
        ),
        ("Near misses (kept, just below the threshold)", report["near_misses"], "kept", "closest"),
    )
    for title, rows, left, right in sections:
        if rows:
            table = [
                [r["similarity"], r[left]["id"], r[left]["text"], r[right]["id"], r[right]["text"]]
                for r in rows
            ]
            lines += [
                "",
                f"## {title}",
                "",
                markdown_table(["similarity", left, "text", right, "text"], table),
            ]
    if plotted:
        q = report["closest_kept_similarity"]
        lines += [
            "",
            "## Nearest-neighbour similarity",
            "",
            "Records are visited by id; each is compared with the records kept before it (in its cluster and the "
            "clusters it borders),",
            "and removed when the closest of them is above the threshold. That similarity, per record:",
            f"median {q['median']}, 95th percentile {q['p95']}, max {q['max']}.",
            "",
            "![histogram](similarity.png)",
        ]
    return "\n".join(lines)
