"""`opensem export`: write a built stage's records in a standard dataset format.

The records come from the store entry of the stage's current lot, so what is exported is exactly
what the build made (a stale stage is refused, with the command that builds it). Records a format
cannot hold (documents in any chat format, instruction records as dpo) are skipped and counted.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensem.errors import DataError, Location, UsageError
from opensem.data.formats import EXPORT_FORMATS, export_record, record_kind


@dataclass
class ExportReport:
    file: str  # the stage output file that was read
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # record kind -> count

    def describe(self, fmt: str, output: Path) -> str:
        text = f"wrote {self.written} records as {fmt} to {output} (from {self.file})"
        if self.skipped:
            kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.skipped.items()))
            text += f"; skipped {kinds} records that {fmt} cannot hold"
        return text


def export_dataset(session: Any, stage: str, fmt: str, output: Path, file: str | None = None) -> ExportReport:
    """Export the records file of a built stage of session's graph (BuildSession) to output (jsonl)."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}")
    graph = session.graph
    if stage not in graph.names:
        raise UsageError(f"no stage named {stage} in {graph.job_id}", hint=f"stages: {', '.join(graph.names)}")
    planned = session.plan().stage(stage)
    if planned.status != "up-to-date" or planned.lot is None:
        raise UsageError(
            f"stage {stage} is not built for the current manifest and data ({'; '.join(planned.reasons)})",
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
    lines: list[str] = []
    source = out_dir / name
    for raw in source.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        record = json.loads(raw)
        try:
            exported = export_record(record, fmt)
        except DataError:
            kind = _kind(record)
            report.skipped[kind] = report.skipped.get(kind, 0) + 1
            continue
        lines.append(json.dumps(exported, ensure_ascii=False) + "\n")
        report.written += 1
    if not report.written:
        raise DataError(
            f"none of the {sum(report.skipped.values())} records of {stage}/{name} can be written as {fmt}",
            Location(file=str(source)),
            hint="dpo needs preference records; the chat formats need instruction or preference records",
        )
    _write_atomically(output, "".join(lines))
    return report


def _kind(record: dict[str, Any]) -> str:
    try:
        return record_kind(record)
    except DataError:
        return "unknown"


def _write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
