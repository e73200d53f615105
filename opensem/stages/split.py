"""The split stage: a deterministic train/test split keyed by each record's id.

A record's side depends only on the seed and its own id, never on the other records, so adding or
removing records never moves the existing ones from one side to the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.build.digests import sha256_text
from opensem.data.records import has_string_id, read_records, write_records
from opensem.errors import DataError, Location, StageError
from opensem.manifest.fields import Section
from opensem.manifest.sections import section
from opensem.stages import register
from opensem.stages.base import StageContext, StageResult
from opensem.stages.wiring import Wiring

RECORDS_FILE = "records.jsonl"


class SplitConfig(Section):
    test_fraction: float = Field(0.1, gt=0, lt=1, description="Share of records held out for evaluation.")
    seed: int | None = Field(None, description="Seed of the split hash; defaults to the manifest seed.")


def split_score(record_id: str, seed: int) -> float:
    """A uniform number in [0, 1) from the seed and the id; a record is test iff it is below test_fraction."""
    return int(sha256_text(f"{seed}:{record_id}")[:16], 16) / 16**16


def input_records(inputs: dict[str, Path], stage: str) -> tuple[Path, list[dict[str, Any]]]:
    """The records.jsonl of the 'records' input (a stage's out/ or the file itself); each has an id."""
    source = Path(inputs["records"])
    path = source / RECORDS_FILE if source.is_dir() else source
    if not path.is_file():
        raise DataError(f"no {RECORDS_FILE} in the {stage} input", Location(file=str(source)), hint=f"{stage} takes the records of ingest (or synthesize, dedup)")
    return path, read_records(path, check=has_string_id, hint=f"{stage} reads the records written by ingest").records


@register
class Split:
    """Stage kind `split`: records/records.jsonl -> train.jsonl and test.jsonl."""

    name = "split"
    version = "1"
    Params = SplitConfig
    sections = (section("data.split", SplitConfig, default_factory=SplitConfig, description="Deterministic split by a hash of each record id."),)

    def wire(self, wiring: Wiring) -> None:
        config = wiring.section("data.split")
        seed = config.seed if config.seed is not None else wiring.manifest.seed
        wiring.add(self, config.model_copy(update={"seed": seed}), {"records": wiring.channel("records")}, provides=("split", "train", "test"))

    def run(self, params: SplitConfig, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        if params.seed is None:
            raise StageError("split: no seed", hint="the graph gives split the manifest's seed when data.split.seed is unset; please report this")
        path, records = input_records(inputs, self.name)
        if not records:
            raise DataError("no records to split", Location(file=str(path)), hint="check that the sources hold data")
        scores = [split_score(r["id"], params.seed) for r in records]
        is_test = [score < params.test_fraction for score in scores]
        note = ""
        if len(records) >= 2 and not any(is_test):
            # Evaluation needs data: the record closest to the test side goes there, deterministically.
            is_test[min(range(len(records)), key=lambda i: (scores[i], records[i]["id"]))] = True
            note = "; no record hashed into test, so the one with the smallest hash was moved there"
        elif len(records) >= 2 and all(is_test):
            is_test[max(range(len(records)), key=lambda i: (scores[i], records[i]["id"]))] = False
            note = "; every record hashed into test, so the one with the largest hash was moved to train"
        train = [r for r, t in zip(records, is_test) if not t]
        test = [r for r, t in zip(records, is_test) if t]
        out_dir.mkdir(parents=True, exist_ok=True)
        write_records(out_dir / "train.jsonl", train)
        write_records(out_dir / "test.jsonl", test)
        metrics = {
            "records": len(records),
            "train": len(train),
            "test": len(test),
            "test_fraction": params.test_fraction,
            "seed": params.seed,
            "moved": bool(note),
        }
        return StageResult(summary=f"{len(train)} train / {len(test)} test records (seed {params.seed}){note}", metrics=metrics)
