"""The split stage: a deterministic train/test split keyed by each record's id.

A record's side depends only on the seed and its own id, never on the other records, so adding or
removing records never moves the existing ones from one side to the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.data.records import has_string_id, read_records
from opensem.data.splitting import split_file
from opensem.errors import DataError, Location, StageError
from opensem.settings.fields import Section
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import StageContext, StageResult
from opensem.stages.wiring import Wiring

RECORDS_FILE = "records.jsonl"


class SplitConfig(Section):
    test_fraction: float = Field(
        0.1, gt=0, lt=1, description="Share of records held out for evaluation."
    )
    seed: int | None = Field(
        None, description="Seed of the split hash; defaults to the manifest seed."
    )


def records_path(inputs: dict[str, Path], stage: str) -> Path:
    """The records.jsonl of the 'records' input (a stage's out/ or the file itself)."""
    source = Path(inputs["records"])
    path = source / RECORDS_FILE if source.is_dir() else source
    if not path.is_file():
        raise DataError(
            f"no {RECORDS_FILE} in the {stage} input",
            Location(file=str(source)),
            hint=f"{stage} takes the records of ingest (or synthesize, dedup)",
        )
    return path


def input_records(inputs: dict[str, Path], stage: str) -> tuple[Path, list[dict[str, Any]]]:
    """The records of the 'records' input; each has an id."""
    path = records_path(inputs, stage)
    return path, read_records(
        path, check=has_string_id, hint=f"{stage} reads the records written by ingest"
    ).records


@register
class Split:
    """Stage kind `split`: records/records.jsonl -> train.jsonl and test.jsonl."""

    name = "split"
    holds = "dataset"
    version = "1"
    Params = SplitConfig
    sections = (
        section(
            "data.split",
            SplitConfig,
            default_factory=SplitConfig,
            description="Deterministic split by a hash of each record id.",
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """The split stage, always: train and test from the records."""
        config = wiring.section("data.split")
        seed = config.seed if config.seed is not None else wiring.manifest.seed
        wiring.add(
            self,
            config.model_copy(update={"seed": seed}),
            {"records": wiring.channel("records")},
            provides=("split", "train", "test"),
        )

    def run(
        self, params: SplitConfig, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Split the records into train and test by a seeded hash."""
        if params.seed is None:
            raise StageError(
                "split: no seed",
                hint="the graph gives split the manifest's seed when data.split.seed is unset; please report this",
            )
        path = records_path(inputs, self.name)
        outcome = split_file(
            path,
            params.seed,
            params.test_fraction,
            out_dir,
            ctx.work_dir / "ranges",
            hint=f"{self.name} reads the records written by ingest",
        )
        note = {
            "to test": "; no record hashed into test, so the one with the smallest hash was moved there",
            "to train": "; every record hashed into test, so the one with the largest hash was moved to train",
        }.get(outcome.moved, "")
        metrics = {
            "records": outcome.train + outcome.test,
            "train": outcome.train,
            "test": outcome.test,
            "test_fraction": params.test_fraction,
            "seed": params.seed,
            "moved": bool(note),
        }
        return StageResult(
            summary=f"{outcome.train} train / {outcome.test} test records (seed {params.seed}){note}",
            metrics=metrics,
        )
