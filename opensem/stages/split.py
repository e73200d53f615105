"""The split stage: a deterministic train/test split keyed by each record's id.

A record's side depends only on the seed and its own id, never on the other records, so adding or
removing records never moves the existing ones from one side to the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.errors import DataError, Location
from opensem.build.digests import sha256_text
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult

RECORDS_FILE = "records.jsonl"


class SplitParams(StageParams):
    test_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int = 42


def split_score(record_id: str, seed: int) -> float:
    """A uniform number in [0, 1) from the seed and the id; a record is test iff it is below test_fraction."""
    return int(sha256_text(f"{seed}:{record_id}")[:16], 16) / 16**16


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records of a jsonl file; each must be an object with a string id."""
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = Location(file=str(path), line=number)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", where) from exc
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise DataError("record has no string 'id'", where, hint="split reads the records written by ingest")
            records.append(record)
    return records


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")


@register
class Split:
    """Stage kind `split`: records/records.jsonl -> train.jsonl and test.jsonl."""

    name = "split"
    version = "1"
    Params = SplitParams

    def run(self, params: SplitParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        source = Path(inputs["records"])
        path = source / RECORDS_FILE if source.is_dir() else source
        if not path.exists():
            raise DataError(f"no {RECORDS_FILE} in the split input", Location(file=str(source)), hint="split takes the output of ingest")
        records = read_records(path)
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
