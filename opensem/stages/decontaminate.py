"""Stage kind decontaminate: training records that leak the test split or the golden set.

A training record is contaminated when it shares an n-gram (13 words by default) with a test
record or a golden item, or, with embedding_threshold set, when its instruction is a paraphrase
of a reference question (cosine similarity above the threshold). Mode drop removes them from
train.jsonl; mode report only lists them. The test split is never changed: evaluation reads it
from the split stage.

out/: train.jsonl, contaminated.jsonl (each flagged record, why and what it matches),
report.json, report.md and similarity.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from opensem.errors import DataError, Location, StageError
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult
from opensem.stages.split import read_records, write_records


class DecontaminateParams(StageParams):
    ngram: int = Field(13, ge=1, le=1000, description="words per n-gram")
    against_test: bool = True
    against_golden: bool = True
    embedding_threshold: float | None = Field(None, gt=0.0, lt=1.0, description="cosine above which an instruction paraphrases a reference; None: off")
    model: str | None = Field(None, description="sentence-transformers model for the paraphrase check")
    mode: Literal["drop", "report"] = "drop"

    @model_validator(mode="after")
    def _something_to_check(self) -> "DecontaminateParams":
        if not (self.against_test or self.against_golden):
            raise ValueError("decontaminate needs against_test or against_golden")
        if self.embedding_threshold is not None and not self.model:
            raise ValueError("embedding_threshold needs a model")
        return self


def _split_file(inputs: dict[str, Path], name: str) -> Path:
    source = Path(inputs["split"])
    path = source / name if source.is_dir() else source
    if not path.is_file():
        raise DataError(f"decontaminate: no {name} in the split input", Location(file=str(source)), hint="decontaminate takes the output of split")
    return path


@register
class Decontaminate:
    name = "decontaminate"
    version = "1"
    Params = DecontaminateParams

    def run(self, params: DecontaminateParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        """Flag contaminated training records; drop them (mode drop) and write the report."""
        from opensem.curate.decontam import find, golden_references, test_references
        from opensem.curate.decontam_report import contaminated_rows, decontam_report

        train = read_records(_split_file(inputs, "train.jsonl"))
        references = []
        if params.against_test:
            references += test_references(read_records(_split_file(inputs, "test.jsonl")))
        if params.against_golden:
            if "golden" not in inputs:
                raise StageError("decontaminate: against_golden is set but the stage has no golden input", hint="the plan and the stage disagree; please report it")
            references += golden_references(Path(inputs["golden"]))
        batch_size = int(ctx.settings.get("batch_size", 64))  # how, not what: never in the lot
        embedding = (params.model, inputs.get("model"), batch_size) if params.embedding_threshold is not None and params.model else None
        findings = find(train, references, params.ngram, embedding, ctx)
        rows = contaminated_rows(train, references, findings, params.embedding_threshold)
        flagged = {row["id"] for row in rows}
        kept = [r for r in train if r["id"] not in flagged] if params.mode == "drop" else train
        out_dir.mkdir(parents=True, exist_ok=True)
        write_records(out_dir / "train.jsonl", kept)
        write_records(out_dir / "contaminated.jsonl", rows)
        metrics = decontam_report(train, references, findings, rows, params, out_dir)
        action = "dropped" if params.mode == "drop" else "reported (mode report: kept)"
        against = " and ".join(s for s, on in (("test split", params.against_test), ("golden set", params.against_golden)) if on)
        paraphrase = f", cosine > {params.embedding_threshold:g}" if params.embedding_threshold is not None else ""
        summary = f"{len(rows)} of {len(train)} training records {action}: overlap with the {against} ({params.ngram}-grams{paraphrase})"
        if findings.stats is not None:
            metrics.update(embedded=findings.stats.encoded, cached=findings.stats.cached)
        return StageResult(summary=summary, metrics=metrics)
