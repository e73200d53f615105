"""The split stage: deterministic, stable under additions, and never without test data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opensem.data.formats import make_record
from opensem.data.splitting import split_score
from opensem.errors import DataError
from opensem.stages.base import StageContext, StageResult
from opensem.stages.split import Split, SplitConfig


def context(root: Path) -> StageContext:
    return StageContext(
        project_root=root,
        job_id="t",
        stage_name="split",
        work_dir=root / "work",
        cache_dir=root / "cache",
    )


def records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        make_record("data/docs.jsonl", text=f"document number {i}") for i in range(start, start + n)
    ]


def run_split(
    root: Path, recs: list[dict[str, Any]], name: str, **params: Any
) -> tuple[StageResult, list[str], list[str]]:
    """Write recs as an ingest output, split them, and return the result and the train/test ids."""
    src = root / f"{name}-in"
    src.mkdir(parents=True)
    (src / "records.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8"
    )
    out = root / f"{name}-out"
    result = Split().run(
        SplitConfig(**{"seed": 42, **params}), {"records": src}, out, context(root)
    )
    ids = [
        [json.loads(line)["id"] for line in (out / f).read_text(encoding="utf-8").splitlines()]
        for f in ("train.jsonl", "test.jsonl")
    ]
    return result, ids[0], ids[1]


def test_split_is_deterministic(tmp_path: Path) -> None:
    recs = records(200)
    run_split(tmp_path, recs, "a")
    run_split(tmp_path, recs, "b")
    for name in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "a-out" / name).read_bytes() == (tmp_path / "b-out" / name).read_bytes()


def test_split_keeps_input_order_and_every_record(tmp_path: Path) -> None:
    recs = records(100)
    _, train, test = run_split(tmp_path, recs, "a")
    order = [r["id"] for r in recs]
    assert sorted(train + test) == sorted(order)
    assert train == [i for i in order if i in set(train)]
    assert test == [i for i in order if i in set(test)]


def test_adding_records_never_moves_existing_ones(tmp_path: Path) -> None:
    base = records(300)
    _, train_a, test_a = run_split(tmp_path, base, "a")
    _, train_b, test_b = run_split(tmp_path, base + records(300, start=300), "b")
    assert set(test_a) <= set(test_b)
    assert set(train_a) <= set(train_b)


def test_seed_changes_the_split(tmp_path: Path) -> None:
    recs = records(200)
    _, _, test_a = run_split(tmp_path, recs, "a", seed=1)
    _, _, test_b = run_split(tmp_path, recs, "b", seed=2)
    assert test_a != test_b


def test_fraction_roughly_honoured_on_1000_records(tmp_path: Path) -> None:
    result, train, test = run_split(tmp_path, records(1000), "a", test_fraction=0.2)
    assert 150 <= len(test) <= 250
    assert result.metrics == {
        "records": 1000,
        "train": len(train),
        "test": len(test),
        "test_fraction": 0.2,
        "seed": 42,
        "moved": False,
    }


def test_rule_matches_the_documented_formula(tmp_path: Path) -> None:
    recs = records(50)
    _, _, test = run_split(tmp_path, recs, "a", test_fraction=0.3, seed=7)
    assert test == [r["id"] for r in recs if split_score(r["id"], 7) < 0.3]


def test_empty_test_side_gets_the_smallest_hash(tmp_path: Path) -> None:
    recs = records(3)
    result, train, test = run_split(tmp_path, recs, "a", test_fraction=1e-9)
    smallest = min(recs, key=lambda r: split_score(r["id"], 42))["id"]
    assert test == [smallest] and len(train) == 2
    assert result.metrics["moved"] is True
    assert "smallest hash" in result.summary


def test_empty_input_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no records"):
        run_split(tmp_path, [], "a")


def test_record_without_id_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="'id'") as info:
        run_split(tmp_path, [*records(1), {"text": "no id"}], "a")
    assert info.value.location.line == 2


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_fraction_out_of_range_is_refused(fraction: float) -> None:
    with pytest.raises(ValidationError):
        SplitConfig(test_fraction=fraction)


def test_a_large_file_split_in_byte_ranges_on_every_core_gives_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opensem.data.parallel as parallel

    recs = records(500)
    run_split(tmp_path, recs, "serial")
    monkeypatch.setattr(
        parallel, "PARALLEL_BYTES", 0
    )  # as if the file were large: 8 ranges in 2 worker processes
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    result, _, _ = run_split(tmp_path, recs, "parallel")
    for name in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "parallel-out" / name).read_bytes() == (
            tmp_path / "serial-out" / name
        ).read_bytes()
    assert result.metrics["records"] == 500

    few = records(3)
    result, train, test = run_split(
        tmp_path, few, "moved", test_fraction=0.0001
    )  # no record hashes into test
    assert (
        len(test) == 1
        and test[0] == min(few, key=lambda r: split_score(r["id"], 42))["id"]
        and result.metrics["moved"]
    )

    lines = [json.dumps(r) for r in records(40)]
    lines[33] = '{"text": "no id here"}'
    (tmp_path / "bad-in").mkdir()
    (tmp_path / "bad-in" / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(
        DataError
    ) as caught:  # found in a worker's range, named by its line in the whole file
        Split().run(
            SplitConfig(seed=42),
            {"records": tmp_path / "bad-in"},
            tmp_path / "bad-out",
            context(tmp_path),
        )
    assert caught.value.location.line == 34 and "no string 'id'" in caught.value.message
