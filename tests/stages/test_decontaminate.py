"""The decontaminate stage: n-gram leaks of the golden set and test split, paraphrases, drop or report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opensem.curate.config import DecontaminateConfig
from opensem.data.formats import make_record
from opensem.errors import StageError
from opensem.stages.base import StageContext, StageResult
from opensem.stages.decontaminate import Decontaminate

GOLDEN = [
    {
        "question": "How many seconds should a standard double espresso take to brew?",
        "answer": "Roughly 25 to 30 seconds, timed from when the pump starts.",
    },
    {
        "question": "My espresso is sour. Which way should I adjust the grinder?",
        "answer": "Make the grind finer so the shot runs slower and extracts more.",
    },
]


def chat(question: str, answer: str) -> dict[str, Any]:
    return make_record(
        "data/qa.jsonl",
        messages=[{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
    )


CLEAN = [
    chat("What is crema?", "The foam of emulsified oils and gas on top of an espresso."),
    chat("How often should I descale?", "Every one to three months, depending on water hardness."),
    chat("Why weigh the dose?", "A scale makes the dose repeatable from shot to shot."),
]
# 14 consecutive words of the first golden item (question end, answer start) inside an otherwise different record.
LEAK = chat(
    "Timing tips?",
    "A double espresso should take to brew roughly 25 to 30 seconds, timed from when the pump starts, then taste.",
)
PARAPHRASE = chat("When my espresso tastes sour, should the grinder go finer or coarser?", "Finer.")
TEST = [
    chat(
        "What does tamping do to the puck?",
        "It compresses the coffee bed evenly so water cannot channel through weak spots in it.",
    )
]
TEST_LEAK = chat(
    "Tamping?", "it compresses the coffee bed evenly so water cannot channel through weak spots"
)


def context(root: Path) -> StageContext:
    return StageContext(
        project_root=root,
        job_id="t",
        stage_name="decontaminate",
        work_dir=root / "work",
        cache_dir=root / "cache",
    )


def write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def run(
    root: Path, train: list[dict[str, Any]], name: str, golden: bool = True, **params: Any
) -> tuple[StageResult, Path]:
    split = root / f"{name}-split"
    split.mkdir(parents=True)
    write(split / "train.jsonl", train)
    write(split / "test.jsonl", TEST)
    inputs = {"split": split}
    if golden:
        (root / "golden").mkdir(exist_ok=True)
        write(root / "golden" / "golden.jsonl", GOLDEN)
        inputs["golden"] = root / "golden"
    out = root / f"{name}-out"
    return Decontaminate().run(DecontaminateConfig(**params), inputs, out, context(root)), out


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_planted_golden_13_gram_is_caught_and_clean_records_stay(tmp_path: Path) -> None:
    result, out = run(tmp_path, CLEAN + [LEAK], "a")
    assert ids(out / "train.jsonl") == [r["id"] for r in CLEAN]
    (row,) = [json.loads(line) for line in (out / "contaminated.jsonl").read_text().splitlines()]
    assert row["id"] == LEAK["id"] and row["reasons"] == ["ngram"]
    assert row["ngram"]["reference"]["set"] == "golden" and row["ngram"]["shared"] == 2
    assert row["ngram"]["gram"] == "take to brew roughly 25 to 30 seconds timed from when the pump"
    report = json.loads((out / "report.json").read_text())
    assert (report["contaminated"], report["kept"], report["by_reference_set"]) == (
        1,
        3,
        {"golden": 1, "test": 0},
    )
    assert (
        result.metrics["contaminated"] == 1 and "1 of 4 training records dropped" in result.summary
    )
    assert (out / "similarity.png").read_bytes()[:4] == b"\x89PNG"


def test_overlap_with_the_test_split_is_caught(tmp_path: Path) -> None:
    _, out = run(tmp_path, CLEAN + [TEST_LEAK], "a", against_golden=False, ngram=8)
    assert LEAK["id"] not in ids(out / "train.jsonl") and TEST_LEAK["id"] not in ids(
        out / "train.jsonl"
    )
    assert (
        json.loads((out / "contaminated.jsonl").read_text())["ngram"]["reference"]["set"] == "test"
    )


def test_report_mode_lists_but_keeps(tmp_path: Path) -> None:
    _, out = run(tmp_path, CLEAN + [LEAK], "a", mode="report")
    assert ids(out / "train.jsonl") == [r["id"] for r in CLEAN + [LEAK]]
    assert ids(out / "contaminated.jsonl") == [LEAK["id"]]
    assert "mode `report`" in (out / "report.md").read_text()


def test_paraphrases_need_the_embedding_check(tmp_path: Path) -> None:
    _, plain = run(tmp_path, CLEAN + [PARAPHRASE], "plain")
    assert PARAPHRASE["id"] in ids(plain / "train.jsonl")  # no 13 words in common
    _, out = run(
        tmp_path, CLEAN + [PARAPHRASE], "embed", embedding_threshold=0.8, model="all-MiniLM-L6-v2"
    )
    assert ids(out / "train.jsonl") == [r["id"] for r in CLEAN]
    (row,) = [json.loads(line) for line in (out / "contaminated.jsonl").read_text().splitlines()]
    assert row["reasons"] == ["embedding"] and row["paraphrase"]["similarity"] > 0.8
    assert row["paraphrase"]["reference"]["text"].startswith("My espresso is sour.")
    report = json.loads((out / "report.json").read_text())
    assert all(m["similarity"] <= 0.8 for m in report["near_misses"])


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    _, a = run(
        tmp_path, CLEAN + [LEAK, PARAPHRASE], "a", embedding_threshold=0.8, model="all-MiniLM-L6-v2"
    )
    _, b = run(
        tmp_path, CLEAN + [LEAK, PARAPHRASE], "b", embedding_threshold=0.8, model="all-MiniLM-L6-v2"
    )
    for name in ("train.jsonl", "contaminated.jsonl", "report.json", "report.md", "similarity.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="against_test or against_golden"):
        DecontaminateConfig(against_test=False, against_golden=False)
    with pytest.raises(StageError, match="no golden input"):
        run(tmp_path, CLEAN, "a", golden=False)
