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

from opensem.curate.config import DedupConfig
from opensem.data.records import write_records
from opensem.errors import DataError, Location
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import EMBEDDING_LIBRARIES, StageContext, StageResult
from opensem.stages.split import RECORDS_FILE, input_records
from opensem.stages.wiring import Wiring


@register
class Dedup:
    name = "dedup"
    holds = "dataset"
    libraries = EMBEDDING_LIBRARIES
    version = "2"  # 2: params are the curation.dedup section as written (batch_size a run setting)
    Params = DedupConfig
    sections = (
        section(
            "curation.dedup",
            DedupConfig | None,
            None,
            description="Remove exact and near-duplicate records after ingest (and synthesis); omit to keep them.",
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """The dedup stage, when curation.dedup is set."""
        config = wiring.section("curation.dedup")
        if config is None:
            return
        inputs = {"records": wiring.channel("records")}
        if config.semantic:  # a model given as a folder: its bytes key the lot
            inputs.update(wiring.model_inputs(config.model, ("curation", "dedup", "model")))
        wiring.add(self, config, inputs, provides=("records",))

    def run(
        self, params: DedupConfig, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Remove exact and near duplicates; write the kept records, the removed ones and the report."""
        from opensem.curate.dedup import exact_duplicates, semantic_duplicates
        from opensem.curate.dedup_report import dedup_report, removed_rows
        from opensem.curate.text import field_text

        path, records = input_records(inputs, self.name)
        if not records:
            raise DataError(
                "no records to deduplicate",
                Location(file=str(path)),
                hint="check that the sources hold data",
            )
        texts = [field_text(record, params.field) for record in records]
        exact = exact_duplicates(records, texts) if params.exact else {}
        semantic = None
        if params.semantic:
            remaining = [i for i in range(len(records)) if i not in exact]
            semantic = semantic_duplicates(
                records, texts, remaining, params, params.batch_size, inputs.get("model"), ctx
            )
        removed = {**exact, **(semantic.removed if semantic else {})}
        kept = [record for i, record in enumerate(records) if i not in removed]
        out_dir.mkdir(parents=True, exist_ok=True)
        write_records(out_dir / RECORDS_FILE, kept)
        write_records(out_dir / "removed.jsonl", removed_rows(records, texts, removed))
        metrics = dedup_report(records, texts, exact, semantic, params, out_dir)
        how = "exact only"
        if semantic:
            how = (
                f"cosine > {params.threshold:g}, {params.model}; {semantic.stats.encoded} "
                f"embedded, {semantic.stats.cached} cached"
            )
        summary = (
            f"{len(records)} -> {len(kept)} records: {len(exact)} exact and {metrics['semantic']} "
            f"semantic duplicates removed ({how})"
        )
        if semantic:
            metrics.update(embedded=semantic.stats.encoded, cached=semantic.stats.cached)
        return StageResult(summary=summary, metrics=metrics)
