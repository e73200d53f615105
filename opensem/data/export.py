"""`opensem export`: write a built stage's records in a standard dataset format.

The records come from the store entry of the stage's current lot, so what is exported is exactly
what the build made (a stale stage is refused, with the command that builds it). Records a format
cannot hold (documents in any chat format, instruction records as dpo) are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensem.data.formats import EXPORT_FORMATS, export_record, record_kind
from opensem.data.records import read_records, write_records
from opensem.errors import DataError, Location, UsageError


@dataclass
class ExportReport:
    file: str  # the stage output file that was read
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # record kind -> count

    def describe(self, fmt: str, output: Path) -> str:
        """One line for the terminal: what was written where, and what was skipped."""
        text = f"wrote {self.written} records as {fmt} to {output} (from {self.file})"
        if self.skipped:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.skipped.items()))
            text += f"; skipped {kinds} records that {fmt} cannot hold"
        return text


def export_dataset(
    session: Any, stage: str, fmt: str, output: Path, file: str | None = None
) -> ExportReport:
    """Export the records file of a built stage of session's graph (BuildSession) to output (jsonl)."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}"
        )
    graph = session.graph
    if stage not in graph.names:
        raise UsageError(
            f"no stage named {stage} in {graph.job_id}", hint=f"stages: {', '.join(graph.names)}"
        )
    planned = session.plan().stage(stage)
    if planned.status != "up-to-date" or planned.lot is None:
        raise UsageError(
            f"stage {stage} is not built for the current manifest and data "
            f"({'; '.join(r.text for r in planned.reasons)})",
            hint=f"run `opensem build {graph.manifest_path} --until {stage}` first",
        )
    out_dir = session.store.out_dir(planned.lot)
    available = sorted(p.name for p in out_dir.glob("*.jsonl"))
    name = file or next((n for n in ("records.jsonl", "train.jsonl") if n in available), None)
    if name is None or name not in available:
        raise UsageError(
            f"stage {stage} has no {'records file' if name is None else name} to export",
            hint=f"its jsonl files: {', '.join(available) or 'none'}; pick one with --file",
        )
    report = ExportReport(file=name)
    exported: list[dict[str, Any]] = []
    source = out_dir / name
    for record in read_records(source).records:
        try:
            exported.append(export_record(record, fmt))
        except DataError:
            kind = record_kind(record, "unknown")
            report.skipped[kind] = report.skipped.get(kind, 0) + 1
    report.written = len(exported)
    if not report.written:
        raise DataError(
            f"none of the {sum(report.skipped.values())} records of {stage}/{name} can be written as {fmt}",
            Location(file=str(source)),
            hint="dpo needs preference records; the chat formats need instruction or preference records",
        )
    write_records(output, exported, sort_keys=False)
    return report
