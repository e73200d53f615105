"""What the decontaminate stage tells its user: what leaked, from where, and how close the rest came."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opensem.curate.config import DecontaminateConfig
from opensem.curate.decontam import Findings
from opensem.curate.ngrams import Reference
from opensem.curate.report import (
    Panel,
    markdown_table,
    plot_histograms,
    quantiles,
    rounded,
    write_report,
)
from opensem.curate.text import full_text, instruction_of, snippet

SHOWN = 20  # flagged records listed in the report
SHOWN_EDGE = 10  # near misses listed


def _ref(reference: Reference) -> dict[str, str]:
    return {"set": reference.set, "id": reference.id, "text": snippet(reference.text)}


def contaminated_rows(
    train: list[dict[str, Any]],
    references: list[Reference],
    findings: Findings,
    threshold: float | None,
) -> list[dict[str, Any]]:
    """One row per contaminated training record, in input order: why, and which reference it leaks."""
    rows = []
    for index, record in enumerate(train):
        overlap = findings.overlaps[index]
        near = findings.similarity[index] if findings.similarity else None
        paraphrase = near is not None and threshold is not None and near[0] > threshold
        if overlap is None and not paraphrase:
            continue
        row: dict[str, Any] = {
            "id": record["id"],
            "reasons": [],
            "text": snippet(full_text(record)),
        }
        if overlap is not None:
            row["reasons"].append("ngram")
            row["ngram"] = {
                "reference": _ref(references[overlap.reference]),
                "gram": overlap.gram,
                "shared": overlap.shared,
                "containment": rounded(overlap.containment),
            }
        if paraphrase and near is not None:
            row["reasons"].append("embedding")
            row["paraphrase"] = {
                "reference": _ref(references[near[1]]),
                "similarity": rounded(near[0]),
            }
        rows.append(row)
    return rows


def _strength(row: dict[str, Any]) -> tuple[float, float, str]:
    return (
        -row.get("ngram", {}).get("containment", 0.0),
        -row.get("paraphrase", {}).get("similarity", 0.0),
        row["id"],
    )


def decontam_report(
    train: list[dict[str, Any]],
    references: list[Reference],
    findings: Findings,
    rows: list[dict[str, Any]],
    params: DecontaminateConfig,
    out_dir: Path,
) -> dict[str, Any]:
    """Write report.json, report.md and similarity.png; return the stage metrics."""
    by_set = {name: sum(1 for r in references if r.set == name) for name in ("test", "golden")}
    leaked = {name: 0 for name in ("test", "golden")}
    for row in rows:
        for key in ("ngram", "paraphrase"):
            if key in row:
                leaked[row[key]["reference"]["set"]] += 1
                break
    flagged = {row["id"] for row in rows}
    misses = []
    if findings.similarity:
        unflagged = [
            (sim, i, ref)
            for i, (sim, ref) in enumerate(findings.similarity)
            if train[i]["id"] not in flagged and ref >= 0
        ]
        for sim, i, ref in sorted(unflagged, key=lambda t: (-t[0], train[t[1]]["id"]))[:SHOWN_EDGE]:
            misses.append(
                {
                    "similarity": rounded(sim),
                    "train": {"id": train[i]["id"], "text": snippet(instruction_of(train[i]))},
                    "reference": _ref(references[ref]),
                }
            )
    containment = [o.containment if o else 0.0 for o in findings.overlaps]
    report: dict[str, Any] = {
        "train_records": len(train),
        "contaminated": len(rows),
        "kept": len(train) - len(rows) if params.mode == "drop" else len(train),
        "by_reason": {
            reason: sum(1 for r in rows if reason in r["reasons"])
            for reason in ("ngram", "embedding")
        },
        "by_reference_set": leaked,
        "references": {**by_set, "too_short_for_ngrams": findings.unchecked},
        "settings": {
            "ngram": params.ngram,
            "against_test": params.against_test,
            "against_golden": params.against_golden,
            "embedding_threshold": params.embedding_threshold,
            "model": params.model if params.embedding_threshold is not None else None,
            "mode": params.mode,
        },
        "model_digest": findings.model_digest,
        "ngram_containment": quantiles([c for c in containment if c > 0]),
        "nearest_reference_similarity": quantiles([s for s, _ in findings.similarity]),
        "closest_pairs": sorted(rows, key=_strength)[:SHOWN],
        "near_misses": misses,
    }
    panels = [
        Panel(
            f"share of a reference's {params.ngram}-grams found in a training record",
            "containment",
            containment,
            None,
        )
    ]
    if findings.similarity:
        panels.append(
            Panel(
                "instruction vs nearest reference question",
                "cosine similarity",
                [s for s, _ in findings.similarity],
                params.embedding_threshold,
            )
        )
    plot_histograms(panels, out_dir / "similarity.png")
    write_report(out_dir, report, _markdown(report))
    return {
        "train_records": len(train),
        "contaminated": len(rows),
        "ngram": report["by_reason"]["ngram"],
        "embedding": report["by_reason"]["embedding"],
        "kept": report["kept"],
    }


def _markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    against = ", ".join(
        f"{n} {name} items"
        for name, n in report["references"].items()
        if name != "too_short_for_ngrams"
    )
    lines = [
        "# Decontamination report",
        "",
        f"{report['contaminated']} of {report['train_records']} training records overlap the held-out data "
        f"({against}); mode `{s['mode']}`: {report['kept']} training records kept.",
        "",
        f"Checks: {s['ngram']}-gram overlap"
        + (
            f"; paraphrases by `{s['model']}` at cosine similarity > {s['embedding_threshold']:g}"
            if s["embedding_threshold"] is not None
            else ""
        )
        + f". References shorter than {(s['ngram'] + 1) // 2} words are not n-gram checked: "
        + f"{report['references']['too_short_for_ngrams']}.",
    ]
    if report["closest_pairs"]:
        table = []
        for row in report["closest_pairs"]:
            match = row.get("ngram") or row["paraphrase"]
            evidence = (
                f'"{row["ngram"]["gram"]}" ({row["ngram"]["containment"]})'
                if "ngram" in row
                else f"cosine {row['paraphrase']['similarity']}"
            )
            table.append(
                [
                    row["id"],
                    ", ".join(row["reasons"]),
                    f"{match['reference']['set']} {match['reference']['id']}",
                    evidence,
                    row["text"],
                ]
            )
        lines += [
            "",
            "## Contaminated records",
            "",
            markdown_table(["id", "reasons", "reference", "evidence", "text"], table),
        ]
    if report["near_misses"]:
        table = [
            [
                m["similarity"],
                m["train"]["id"],
                m["train"]["text"],
                f"{m['reference']['set']} {m['reference']['id']}",
                m["reference"]["text"],
            ]
            for m in report["near_misses"]
        ]
        lines += [
            "",
            "## Near misses (not flagged)",
            "",
            markdown_table(["similarity", "train", "text", "reference", "text"], table),
        ]
    lines += ["", "![histogram](similarity.png)"]
    return "\n".join(lines)
