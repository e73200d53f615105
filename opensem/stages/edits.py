"""Stage kind edits: a person's corrections of the generated pairs, applied before the split.

Present when data/<job_id>/edits/ exists (the browser's data page writes it). Its log of actions
(edit, delete, approve; opensem.data.edits) is a source, so its bytes key the lot; the stage takes
the records as they reach it, applies the newest action per record and writes the rest unchanged
and in order. Approving changes no record: the output's bytes stay the same and early cutoff keeps
every later stage up to date.
out/: records.jsonl, edits.json (what was done).
"""

from __future__ import annotations

import json
from pathlib import Path

from opensem.settings.fields import Section
from opensem.stages import register
from opensem.stages.base import StageContext, StageResult
from opensem.stages.split import RECORDS_FILE, input_records
from opensem.stages.wiring import Wiring


class EditsParams(Section):
    """Nothing to set: the edits log is the input."""


def edits_folder(job_id: str) -> str:
    """Where an expert's edits log lives, relative to the project."""
    return f"data/{job_id}/edits"


@register
class Edits:
    name = "edits"
    holds = "dataset"
    version = "1"
    Params = EditsParams
    sections = ()  # present with the edits folder

    def wire(self, wiring: Wiring) -> None:
        """The edits stage, when the expert's edits folder exists and records flow."""
        folder = edits_folder(wiring.manifest.job_id)
        records = wiring.channel("records")
        if records is None or not wiring.exists(folder):
            return
        edits = wiring.source(folder, ("data", "edits"))
        if edits is None:
            return
        wiring.add(self, EditsParams(), {"records": records, "edits": edits}, provides=("records",))

    def run(
        self, params: EditsParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Apply the newest action per record; write the records and what was done."""
        from opensem.data.edits import apply_edits, read_edits
        from opensem.data.records import write_records

        _, records = input_records(inputs, self.name)
        kept, counts = apply_edits(records, read_edits(Path(inputs["edits"])))
        out_dir.mkdir(parents=True, exist_ok=True)
        write_records(out_dir / RECORDS_FILE, kept)
        (out_dir / "edits.json").write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
        stale = f"; {counts['stale']} no longer match a record" if counts["stale"] else ""
        return StageResult(
            summary=f"{counts['edited']} edited, {counts['deleted']} deleted, "
            f"{counts['approved']} approved of {counts['records']} records{stale}",
            metrics=counts,
        )
