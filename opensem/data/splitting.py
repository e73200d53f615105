"""Splitting a records file into train and test by each record's id, streaming and on every core.

The file is cut into byte ranges at line starts; each range is read line by line (in a worker
process when the file is large) and its lines are passed through unchanged to that range's own
train and test part files, which are then joined in order. Memory holds one line per worker,
whatever the corpus size. The lines are the upstream stage's (write_records), so the output is
byte for byte what parsing and rewriting every record would give.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from opensem.core.digests import sha256_text
from opensem.data.parallel import ordered_map, workers_for
from opensem.errors import DataError, Location

Extreme = tuple[
    float, str, str, int
]  # (score, id, side, index of the line on its side within its range)


def split_score(record_id: str, seed: int) -> float:
    """A uniform number in [0, 1) from the seed and the id; a record is test iff it is below test_fraction."""
    return int(sha256_text(f"{seed}:{record_id}")[:16], 16) / 16**16


@dataclass
class RangeResult:
    """What one byte range held: lines per side, all lines read, the extremes, or the first bad line."""

    counts: dict[str, int] = field(default_factory=lambda: {"train": 0, "test": 0})
    lines_read: int = 0
    lowest: Extreme | None = None
    highest: Extreme | None = None
    problem: tuple[int, str] | None = None  # (line within the range, what is wrong)


@dataclass
class SplitOutcome:
    train: int
    test: int
    moved: str = ""  # "to test" or "to train" when one side would otherwise be empty


def _split_range(
    path: Path, seed: int, test_fraction: float, task: tuple[int, int, Path]
) -> RangeResult:
    start, end, parts = task
    result = RangeResult()
    with (
        path.open("rb") as source,
        (parts / "train").open("wb") as train,
        (parts / "test").open("wb") as test,
    ):
        source.seek(start)
        outputs = {"train": train, "test": test}
        position = start
        for raw in source:
            if position >= end:
                break
            position += len(raw)
            result.lines_read += 1
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError as exc:
                result.problem = (result.lines_read, f"not valid JSON: {getattr(exc, 'msg', exc)}")
                return result
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                result.problem = (result.lines_read, "record has no string 'id'")
                return result
            score = split_score(record["id"], seed)
            side = "test" if score < test_fraction else "train"
            mark: Extreme = (score, record["id"], side, result.counts[side])
            if result.lowest is None or mark[:2] < result.lowest[:2]:
                result.lowest = mark
            if result.highest is None or mark[:2] > result.highest[:2]:
                result.highest = mark
            outputs[side].write(raw if raw.endswith(b"\n") else raw + b"\n")
            result.counts[side] += 1
    return result


def _ranges(path: Path, pieces: int) -> list[tuple[int, int]]:
    """pieces byte ranges of the file, each starting at a line start."""
    size = path.stat().st_size
    starts = [0]
    with path.open("rb") as handle:
        for k in range(1, pieces):
            handle.seek(max(k * size // pieces - 1, 0))
            handle.readline()
            starts.append(max(handle.tell(), starts[-1]))
    return [(start, end) for start, end in zip(starts, [*starts[1:], size]) if end > start] or [
        (0, 0)
    ]


def split_file(
    path: Path, seed: int, test_fraction: float, out_dir: Path, scratch: Path, hint: str
) -> SplitOutcome:
    """Write out_dir/train.jsonl and test.jsonl; DataError naming the line of a bad record."""
    workers = workers_for(path.stat().st_size)
    ranges = _ranges(path, workers * 4 if workers > 1 else 1)
    folders = [scratch / f"range-{index}" for index in range(len(ranges))]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    results = list(
        ordered_map(
            partial(_split_range, path, seed, test_fraction),
            [(s, e, f) for (s, e), f in zip(ranges, folders)],
            workers,
        )
    )
    before = 0
    for result in results:
        if result.problem is not None:
            raise DataError(
                result.problem[1],
                Location(file=str(path), line=before + result.problem[0]),
                hint=hint,
            )
        before += result.lines_read
    train = sum(r.counts["train"] for r in results)
    test = sum(r.counts["test"] for r in results)
    if train + test == 0:
        raise DataError(
            "no records to split", Location(file=str(path)), hint="check that the sources hold data"
        )
    skip: tuple[int, str, int] | None = (
        None  # (range, side, index) of the one line that changes side
    )
    outcome = SplitOutcome(train, test)
    # Evaluation needs data: the record closest to the test side goes there
    if train + test >= 2 and test == 0:
        index, mark = min(
            ((i, r.lowest) for i, r in enumerate(results) if r.lowest), key=lambda item: item[1][:2]
        )
        skip, outcome = (index, "train", mark[3]), SplitOutcome(train - 1, 1, "to test")
    elif train + test >= 2 and train == 0:
        index, mark = max(
            ((i, r.highest) for i, r in enumerate(results) if r.highest),
            key=lambda item: item[1][:2],
        )
        skip, outcome = (index, "test", mark[3]), SplitOutcome(1, test - 1, "to train")
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        (out_dir / "train.jsonl").open("wb") as train_out,
        (out_dir / "test.jsonl").open("wb") as test_out,
    ):
        outputs = {"train": train_out, "test": test_out}
        for index, folder in enumerate(folders):
            for side in ("train", "test"):
                with (folder / side).open("rb") as part:
                    if skip is None or skip[:2] != (index, side):
                        shutil.copyfileobj(part, outputs[side], 1 << 20)
                        continue
                    other = outputs["test" if side == "train" else "train"]
                    for number, line in enumerate(part):
                        (other if number == skip[2] else outputs[side]).write(line)
    shutil.rmtree(scratch, ignore_errors=True)
    return outcome
