"""The Curator end to end through the real CLI, on the demo data plus planted duplicates and a leak.

ingest -> dedup -> split -> decontaminate -> train: duplicates and the golden leak are gone before
training; adding a record embeds only that record; a no-op build runs nothing; train consumes
decontaminate's train.jsonl.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Project, copy_demo

MANIFEST = """job_id: tiny-demo
base_model:
  tiny: {hidden_size: 64, num_layers: 2, vocab_size: 2000}
data:
  sources:
    - path: data/tiny-demo/docs
    - path: data/tiny-demo/instructions.jsonl
      format: alpaca
    - path: data/tiny-demo/extra.jsonl
      format: alpaca
curation:
  dedup: {}
  decontaminate: {}
method_config: {type: lora, rank: 8, dropout: 0.0}
training: {max_steps: 4, learning_rate: 0.003, max_seq_length: 128, logging_steps: 2}
compute: {batch_size: 8}
"""
EXTRA = [
    # Exact after normalization: a copy of a demo instruction in other letter case.
    {
        "instruction": "what grind size does espresso need?",
        "output": "Espresso needs a fine, even grind.",
    },
    # A near-duplicate of another demo instruction.
    {
        "instruction": "Why do I need a burr grinder for espresso? Thanks!",
        "output": "For an even grind.",
    },
    # A golden item copied into the training data.
    {
        "instruction": "How many days should freshly roasted beans rest before pulling espresso?",
        "output": "One to two weeks after the roast date.",
    },
]


def stored(project: Project, stage: str, name: str) -> Path:
    lot = json.loads((project.root / "manifests" / "curated.lock").read_text())["stages"][stage][
        "lot"
    ]
    return project.root / "build" / "store" / lot[:2] / lot / "out" / name


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_extra(project: Project, records: list[dict[str, str]]) -> None:
    (project.root / "data" / "tiny-demo" / "extra.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )


def build(project: Project, *extra: str) -> tuple[list[str], str]:
    code, output = project.run("build", str(project.root / "manifests" / "curated.yaml"), *extra)
    assert code == 0, output
    return [
        line.split()[1]
        for line in output.splitlines()
        if line.strip().startswith("✓") and "built in" in line
    ], output


@pytest.mark.slow
def test_curation_end_to_end(tmp_path: Path) -> None:
    project = copy_demo(tmp_path)
    (project.root / "manifests" / "curated.yaml").write_text(MANIFEST, encoding="utf-8")
    write_extra(project, EXTRA)

    ran, output = build(project, "--until", "decontaminate")
    assert ran == ["ingest", "dedup", "split", "decontaminate"], output
    removed = {row["text"]: row for row in rows(stored(project, "dedup", "removed.jsonl"))}
    assert (
        removed["what grind size does espresso need?"]["reason"] == "exact"
    )  # the demo's own copy has the smaller id
    assert any(
        row["reason"] == "semantic" and "burr grinder" in text for text, row in removed.items()
    )
    report = json.loads(stored(project, "dedup", "report.json").read_text())
    assert report["removed"]["exact"] == 1 and report["removed"]["semantic"] >= 1
    leaks = rows(stored(project, "decontaminate", "contaminated.jsonl"))
    assert any(
        row["ngram"]["reference"]["set"] == "golden" and "freshly roasted beans rest" in row["text"]
        for row in leaks
    ), leaks
    train_ids = {row["id"] for row in rows(stored(project, "decontaminate", "train.jsonl"))}
    assert not train_ids & {row["id"] for row in leaks}
    assert (
        stored(project, "dedup", "similarity.png").is_file()
        and stored(project, "decontaminate", "report.md").is_file()
    )

    write_extra(
        project,
        [
            *EXTRA,
            {
                "instruction": "Does a ristretto use less water than a lungo?",
                "output": "Yes, far less.",
            },
        ],
    )
    ran, output = build(project, "--until", "decontaminate")
    assert ran[:2] == ["ingest", "dedup"] and "1 embedded" in output, (
        output
    )  # only the new record reached the encoder

    ran, output = build(project, "--until", "decontaminate")
    assert ran == [], output

    ran, output = build(project)
    assert "train" in ran, output
    lock = json.loads((project.root / "manifests" / "curated.lock").read_text())
    assert (
        lock["stages"]["tokenize"]["inputs"]["train"] == lock["stages"]["decontaminate"]["output"]
    )
    assert lock["stages"]["train"]["inputs"]["tokens"] == lock["stages"]["tokenize"]["output"]
    assert lock["stages"]["split"]["inputs"]["records"] == lock["stages"]["dedup"]["output"]
