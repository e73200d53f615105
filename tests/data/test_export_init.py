"""Format conversion, `opensem export` of a built stage, and `opensem init` scaffolding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.data.formats import convert
from opensem.errors import DataError
from tests.e2e.conftest import Project

ALPACA = {"instruction": "What is crema?", "input": "", "output": "The foam on a shot."}
SHAREGPT = {
    "conversations": [
        {"from": "human", "value": "What is crema?"},
        {"from": "gpt", "value": "The foam on a shot."},
    ]
}
MESSAGES = {
    "messages": [
        {"role": "user", "content": "What is crema?"},
        {"role": "assistant", "content": "The foam on a shot."},
    ]
}
DPO = {"prompt": "Best temperature?", "chosen": "About 93 C.", "rejected": "Boiling."}


@pytest.mark.parametrize(
    "source", [("alpaca", ALPACA), ("sharegpt", SHAREGPT), ("messages", MESSAGES)]
)
def test_chat_formats_convert_into_each_other(source: tuple[str, dict]) -> None:
    fmt, record = source
    assert convert(record, fmt, "alpaca") == ALPACA
    assert convert(record, fmt, "sharegpt") == SHAREGPT
    assert convert(record, fmt, "messages") == MESSAGES
    with pytest.raises(DataError, match="only preference records"):
        convert(record, fmt, "dpo")


def test_dpo_converts_to_chat_formats_by_its_chosen_answer() -> None:
    assert convert(DPO, "dpo", "dpo") == DPO
    assert convert(DPO, "dpo", "alpaca") == {
        "instruction": "Best temperature?",
        "input": "",
        "output": "About 93 C.",
    }
    with pytest.raises(DataError, match="unknown export format"):
        convert(DPO, "dpo", "csv")


def demo_project(root: Path, mode: str = "instructions") -> tuple[Project, Path]:
    docs = root / "data" / "demo" / "raw"
    docs.mkdir(parents=True)
    (docs / "grind.md").write_text(
        "# Grind Size\n\nGrind finer when the shot runs fast. A shot takes 25 to 30 seconds.\n"
    )
    (docs / "pairs.jsonl").write_text(json.dumps(ALPACA) + "\n")
    manifest = root / "manifests" / "demo.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        f"job_id: demo\nbase_model: org/model\nsynthesis:\n  mode: {mode}\n  pairs_per_chunk: 2\n"
    )
    return Project(root), manifest


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_writes_a_built_stage_in_each_format(tmp_path: Path) -> None:
    project, manifest = demo_project(tmp_path)
    code, output = project.run(
        "export",
        str(manifest),
        "--stage",
        "synthesize",
        "--format",
        "alpaca",
        "-o",
        str(tmp_path / "x.jsonl"),
    )
    assert (
        code == 2 and "stage synthesize is not built" in output and "--until synthesize" in output
    )
    assert project.run("build", str(manifest), "--until", "split")[0] == 0
    for fmt in ("alpaca", "sharegpt", "messages"):
        code, output = project.run(
            "export",
            str(manifest),
            "--stage",
            "synthesize",
            "--format",
            fmt,
            "-o",
            str(tmp_path / f"{fmt}.jsonl"),
        )
        assert code == 0 and f"wrote 3 records as {fmt}" in output, output
    assert ALPACA in read(tmp_path / "alpaca.jsonl") and MESSAGES in read(
        tmp_path / "messages.jsonl"
    )
    code, output = project.run(
        "export",
        str(manifest),
        "--stage",
        "ingest",
        "--format",
        "messages",
        "-o",
        str(tmp_path / "i.jsonl"),
    )
    assert (
        code == 0
        and "wrote 1 records" in output
        and "skipped 1 document records that messages cannot hold" in output
    )
    code, output = project.run(
        "export",
        str(manifest),
        "--stage",
        "split",
        "--format",
        "sharegpt",
        "-o",
        str(tmp_path / "train.jsonl"),
    )
    assert code == 0 and "(from train.jsonl)" in output
    code, output = project.run(
        "export",
        str(manifest),
        "--stage",
        "synthesize",
        "--format",
        "dpo",
        "-o",
        str(tmp_path / "dpo.jsonl"),
    )
    assert code == 1 and "none of the 3 records" in output and not (tmp_path / "dpo.jsonl").exists()


def test_export_dpo_from_preferences(tmp_path: Path) -> None:
    project, manifest = demo_project(tmp_path, mode="preferences")
    assert project.run("build", str(manifest), "--until", "synthesize")[0] == 0
    code, output = project.run(
        "export",
        str(manifest),
        "--stage",
        "synthesize",
        "--format",
        "dpo",
        "-o",
        str(tmp_path / "dpo.jsonl"),
    )
    assert (
        code == 0
        and "wrote 2 records as dpo" in output
        and "skipped 1 instruction records" in output
    )
    assert all(
        set(r) == {"prompt", "chosen", "rejected"} and r["chosen"] != r["rejected"]
        for r in read(tmp_path / "dpo.jsonl")
    )


def test_init_scaffolds_a_valid_expert_and_never_overwrites(tmp_path: Path) -> None:
    project = Project(tmp_path)
    code, output = project.run("init", "espresso", "--root", str(tmp_path))
    assert code == 0, output
    assert (tmp_path / "data" / "espresso" / "raw").is_dir() and (
        tmp_path / "data" / "espresso" / "golden"
    ).is_dir()
    text = (tmp_path / "manifests" / "espresso.yaml").read_text()
    assert text.startswith(
        "# yaml-language-server: $schema=../schemas/training-manifest.schema.json"
    )
    assert (
        json.loads((tmp_path / "schemas" / "training-manifest.schema.json").read_text())["title"]
        == "TrainingManifest"
    )
    code, output = project.run("validate", str(tmp_path / "manifests" / "espresso.yaml"))
    assert code == 0, output
    (tmp_path / "manifests" / "espresso.yaml").write_text("job_id: mine\n")
    code, output = project.run("init", "espresso", "--root", str(tmp_path))
    assert (
        code == 2
        and "already exists" in output
        and (tmp_path / "manifests" / "espresso.yaml").read_text() == "job_id: mine\n"
    )
    code, output = project.run("init", "bad name!", "--root", str(tmp_path))
    assert code == 2 and "invalid expert name" in output
