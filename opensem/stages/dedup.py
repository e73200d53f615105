"""Stage kind dedup: exact duplicates, then semantic near-duplicates (SemDeDup), removed from the records.

Exact: records whose compared text (instruction, or instruction and answer) is equal after
normalization (NFKC, case, whitespace). Semantic: records whose embedding (all-MiniLM-L6-v2 by
default) has cosine similarity above the threshold with a kept record. Records are compared only
with records of their own kind (instructions, documents, preferences). Of each group the record
with the smallest id is kept, so the result depends on the set of records, not on their order,
and the output keeps the input order. Embeddings are cached under the build cache by (model
digest, text digest): a rebuild after adding records embeds only the new ones.

out/: records.jsonl (kept), removed.jsonl (each removed record, why, and which record it
duplicates), report.json, report.md and similarity.png (nearest-neighbour similarity).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from opensem.errors import DataError, Location
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult
from opensem.stages.split import read_records, write_records

RECORDS_FILE = "records.jsonl"
DEFAULT_MODEL = "all-MiniLM-L6-v2"  # opensem.curate.embedder.DEFAULT_MODEL, kept here so importing stays light
DEFAULT_BATCH_SIZE = 64


class DedupParams(StageParams):
    model: str | None = Field(DEFAULT_MODEL, description="sentence-transformers model id, or a directory given as the 'model' input")
    threshold: float = Field(0.95, gt=0.0, lt=1.0, description="cosine similarity above which a record is a near-duplicate")
    field: Literal["instruction", "instruction_and_answer"] = "instruction"
    exact: bool = True
    semantic: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> "DedupParams":
        if not (self.exact or self.semantic):
            raise ValueError("dedup needs exact or semantic")
        if self.semantic and not self.model:
            raise ValueError("semantic dedup needs a model")
        return self


def input_records(inputs: dict[str, Path], stage: str) -> tuple[Path, list[dict[str, Any]]]:
    """The records.jsonl of the 'records' input (a stage's out/ or the file itself)."""
    source = Path(inputs["records"])
    path = source / RECORDS_FILE if source.is_dir() else source
    if not path.is_file():
        raise DataError(f"no {RECORDS_FILE} in the {stage} input", Location(file=str(source)), hint=f"{stage} takes the output of ingest")
    return path, read_records(path)


@register
class Dedup:
    name = "dedup"
    version = "1"
    Params = DedupParams

    def run(self, params: DedupParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        """Remove exact and near duplicates; write the kept records, the removed ones and the report."""
        from opensem.curate.dedup import exact_duplicates, semantic_duplicates
        from opensem.curate.dedup_report import dedup_report, removed_rows
        from opensem.curate.text import field_text

        path, records = input_records(inputs, self.name)
        if not records:
            raise DataError("no records to deduplicate", Location(file=str(path)), hint="check that the sources hold data")
        texts = [field_text(record, params.field) for record in records]
        exact = exact_duplicates(records, texts) if params.exact else {}
        semantic = None
        if params.semantic:
            remaining = [i for i in range(len(records)) if i not in exact]
            batch_size = int(ctx.settings.get("batch_size", DEFAULT_BATCH_SIZE))  # how, not what: never in the lot
            semantic = semantic_duplicates(records, texts, remaining, params, batch_size, inputs.get("model"), ctx)
        removed = {**exact, **(semantic.removed if semantic else {})}
        kept = [record for i, record in enumerate(records) if i not in removed]
        out_dir.mkdir(parents=True, exist_ok=True)
        write_records(out_dir / RECORDS_FILE, kept)
        write_records(out_dir / "removed.jsonl", removed_rows(records, texts, removed))
        metrics = dedup_report(records, texts, exact, semantic, params, out_dir)
        how = "exact only"
        if semantic:
            how = f"cosine > {params.threshold:g}, {params.model}; {semantic.stats.encoded} embedded, {semantic.stats.cached} cached"
        summary = f"{len(records)} -> {len(kept)} records: {len(exact)} exact and {metrics['semantic']} semantic duplicates removed ({how})"
        if semantic:
            metrics.update(embedded=semantic.stats.encoded, cached=semantic.stats.cached)
        return StageResult(summary=summary, metrics=metrics)
