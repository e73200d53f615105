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

from opensem.curate.config import DecontaminateConfig
from opensem.data.records import has_string_id, read_records, write_records
from opensem.errors import DataError, Location, StageError
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import EMBEDDING_LIBRARIES, StageContext, StageResult
from opensem.stages.eval_wiring import golden_input
from opensem.stages.wiring import Wiring

KEY = ("curation", "decontaminate")


def _records(inputs: dict[str, Path], name: str) -> list[dict[str, object]]:
    source = Path(inputs["split"])
    path = source / name if source.is_dir() else source
    if not path.is_file():
        raise DataError(
            f"decontaminate: no {name} in the split input",
            Location(file=str(source)),
            hint="decontaminate takes the output of split",
        )
    return read_records(path, check=has_string_id).records


@register
class Decontaminate:
    name = "decontaminate"
    holds = "dataset"
    libraries = EMBEDDING_LIBRARIES
    version = "2"  # 2: params are the curation.decontaminate section as written (batch_size a run setting)
    Params = DecontaminateConfig
    sections = (
        section(
            "curation.decontaminate",
            DecontaminateConfig | None,
            None,
            description=(
                "Remove training records that overlap the test split or the golden set; omit to "
                "skip the check."
            ),
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """The stage, when configured; against_golden quietly turns off without a golden set unless the
        manifest asked for it."""
        config = wiring.section("curation.decontaminate")
        if config is None:
            return
        golden = golden_input(wiring)
        if config.against_golden and golden is None and "against_golden" in config.model_fields_set:
            hint = f"add data/{wiring.manifest.job_id}/golden/ or set evaluation.golden, or set against_golden: false"
            wiring.problem(
                (*KEY, "against_golden"), "against_golden is true but there is no golden set", hint
            )
            return
        against_golden = config.against_golden and golden is not None
        if not (config.against_test or against_golden):
            wiring.problem(
                KEY,
                "decontaminate has nothing to check against: against_test is false and there is no golden set",
                "set against_test: true, or add a golden set",
            )
            return
        inputs = {
            "split": wiring.channel("split"),
            **({"golden": golden} if against_golden else {}),
        }
        if config.embedding_threshold is not None:
            inputs.update(wiring.model_inputs(config.model, (*KEY, "model")))
        wiring.add(
            self,
            config.model_copy(update={"against_golden": against_golden}),
            inputs,
            provides=("train",),
        )

    def run(
        self, params: DecontaminateConfig, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Flag contaminated training records; drop them (mode drop) and write the report."""
        from opensem.curate.decontam import find, golden_references, test_references
        from opensem.curate.decontam_report import contaminated_rows, decontam_report

        train = _records(inputs, "train.jsonl")
        references = []
        if params.against_test:
            references += test_references(_records(inputs, "test.jsonl"))
        if params.against_golden:
            if "golden" not in inputs:
                raise StageError(
                    "decontaminate: against_golden is set but the stage has no golden input",
                    hint="the plan and the stage disagree; please report it",
                )
            references += golden_references(Path(inputs["golden"]))
        embedding = (
            (params.model, inputs.get("model"), params.batch_size)
            if params.embedding_threshold is not None
            else None
        )
        findings = find(train, references, params.ngram, embedding, ctx)
        rows = contaminated_rows(train, references, findings, params.embedding_threshold)
        flagged = {row["id"] for row in rows}
        kept = [r for r in train if r["id"] not in flagged] if params.mode == "drop" else train
        out_dir.mkdir(parents=True, exist_ok=True)
        write_records(out_dir / "train.jsonl", kept)
        write_records(out_dir / "contaminated.jsonl", rows)
        metrics = decontam_report(train, references, findings, rows, params, out_dir)
        action = "dropped" if params.mode == "drop" else "reported (mode report: kept)"
        against = " and ".join(
            s
            for s, on in (
                ("test split", params.against_test),
                ("golden set", params.against_golden),
            )
            if on
        )
        paraphrase = (
            f", cosine > {params.embedding_threshold:g}"
            if params.embedding_threshold is not None
            else ""
        )
        summary = (
            f"{len(rows)} of {len(train)} training records {action}: overlap with the {against} "
            f"({params.ngram}-grams{paraphrase})"
        )
        if findings.stats is not None:
            metrics.update(embedded=findings.stats.encoded, cached=findings.stats.cached)
        return StageResult(summary=summary, metrics=metrics)
