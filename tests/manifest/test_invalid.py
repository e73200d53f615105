"""Invalid manifests: each exits 2 with file:line, the key path and a hint, and no traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opensem.cli import main

GOOD = """\
job_id: demo
base_model: org/model
data:
  sources:
    - path: data/demo
method_config:
  type: lora
  rank: 8
training:
  learning_rate: 0.001
  max_steps: 5
publish_target:
  registry: build/registry
  tag: v1
"""

# (case name, manifest text, expected line, expected key path fragment)
CASES = [
    ("bad yaml", "job_id: demo\n  base_model: [x\n", 2, None),
    ("unclosed bracket", "job_id: demo\nbase_model: [x\n", 3, None),
    ("top level is a list", "- job_id: demo\n", 1, None),
    ("empty file", "", 1, None),
    ("missing job_id", GOOD.replace("job_id: demo\n", ""), 1, "job_id"),
    ("missing base_model", GOOD.replace("base_model: org/model\n", ""), 1, "base_model"),
    ("rank of wrong type", GOOD.replace("rank: 8", "rank: big"), 8, "method_config.rank"),
    ("negative rank", GOOD.replace("rank: 8", "rank: -1"), 8, "method_config.rank"),
    ("unknown top-level key", GOOD + "epochz: 3\n", 15, "epochz"),
    ("typo in nested key", GOOD.replace("rank: 8", "rnak: 8"), 8, "method_config.rnak"),
    ("bad method enum", GOOD.replace("type: lora", "type: lorra"), 7, "method_config.type"),
    (
        "bad format enum",
        GOOD.replace("- path: data/demo", "- path: data/demo\n      format: csv"),
        6,
        "data.sources[0].format",
    ),
    (
        "learning rate as text",
        GOOD.replace("learning_rate: 0.001", "learning_rate: fast"),
        10,
        "training.learning_rate",
    ),
    (
        "test_fraction out of range",
        GOOD.replace("data:\n", "data:\n  split:\n    test_fraction: 1.5\n"),
        5,
        "data.split.test_fraction",
    ),
    ("missing data path", GOOD.replace("data/demo", "data/nothere"), 5, "data.sources[0].path"),
    (
        "default data path missing",
        GOOD.replace("data:\n  sources:\n    - path: data/demo\n", "").replace(
            "job_id: demo", "job_id: other"
        ),
        None,
        "data.sources",
    ),
    (
        "path escaping the project",
        GOOD.replace("data/demo", "../../etc"),
        5,
        "data.sources[0].path",
    ),
    (
        "golden set missing",
        GOOD.replace("publish_target:", "evaluation:\n  golden: data/nope.jsonl\npublish_target:"),
        13,
        "evaluation.golden",
    ),
    ("local base model missing", GOOD.replace("org/model", "./models/base"), 2, "base_model"),
    ("duplicate key", GOOD + "job_id: again\n", 15, "job_id"),
    ("job_id with spaces", GOOD.replace("job_id: demo", "job_id: my demo"), 1, "job_id"),
    ("tag missing", GOOD.replace("  tag: v1\n", ""), 12, "publish_target.tag"),
    (
        "tiny heads do not divide width",
        GOOD.replace(
            "base_model: org/model", "base_model:\n  tiny:\n    hidden_size: 64\n    num_heads: 5"
        ),
        3,
        "base_model",
    ),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "data" / "demo").mkdir(parents=True)
    (tmp_path / "data" / "demo" / "a.txt").write_text("hello")
    return tmp_path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return int(exit_info.value.code), captured.out + captured.err


def test_the_good_manifest_is_valid(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "manifests" / "demo.yaml").write_text(GOOD)
    code, output = run_cli(["validate", str(project / "manifests" / "demo.yaml")], capsys)
    assert code == 0, output


@pytest.mark.parametrize(("name", "text", "line", "key"), CASES, ids=[c[0] for c in CASES])
def test_invalid_manifest_exits_2_with_location_and_hint(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    line: int | None,
    key: str | None,
) -> None:
    manifest = project / "manifests" / "demo.yaml"
    manifest.write_text(text)
    code, output = run_cli(["validate", str(manifest)], capsys)
    assert code == 2, output
    assert "Traceback" not in output
    assert "hint:" in output
    where = f"{manifest}:{line}" if line else str(manifest)
    assert where in output, output
    if key:
        assert key in output, output


def test_every_problem_is_reported_at_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = project / "manifests" / "demo.yaml"
    manifest.write_text(
        GOOD.replace("rank: 8", "rank: -1")
        .replace("tag: v1", "tag: v 1")
        .replace("learning_rate: 0.001", "learning_rate: x")
    )
    code, output = run_cli(["validate", str(manifest)], capsys)
    assert code == 2 and "3 problems" in output
    # Problems found while wiring the graph are collected together too (here: two missing paths).
    manifest.write_text(
        GOOD.replace("data/demo", "data/nowhere").replace(
            "publish_target:", "evaluation:\n  golden: data/no.jsonl\npublish_target:"
        )
    )
    code, output = run_cli(["validate", str(manifest)], capsys)
    assert (
        code == 2
        and "2 problems" in output
        and "data.sources[0].path" in output
        and "evaluation.golden" in output
    )
    # An unknown method is named with the methods there are.
    code, output = run_cli(
        ["validate", str(_write(manifest, GOOD.replace("type: lora", "type: lorra")))], capsys
    )
    assert (
        code == 2
        and "unknown type 'lorra'" in output
        and "did you mean `lora`?" in output
        and "dpo" in output
    )
    assert (
        "did you mean"
        in run_cli(["validate", str(_write(manifest, GOOD.replace("rank: 8", "rnak: 8")))], capsys)[
            1
        ]
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", ["validate", "plan", "build", "verify"])
def test_real_process_exits_2_without_traceback(project: Path, command: str) -> None:
    manifest = _write(project / "manifests" / "demo.yaml", GOOD.replace("rank: 8", "rank: -1"))
    result = subprocess.run(
        [sys.executable, "-m", "opensem.cli", command, str(manifest)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert f"{manifest}:8: method_config.rank" in result.stderr


def test_seed_manifest_example_validates_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Section 6 of the coreason-model-foundry PRD, verbatim; data comes from data/<job_id>/."""
    seed_example = textwrap.dedent("""\
        job_id: "train-prod-2025-01-15"
        base_model: "unsloth/llama-3-8b-bnb-4bit"

        # STRATEGY
        method_config:
          type: "orpo"
          rank: 64
          strict_hardware_check: true # Fail if VRAM is low

        # PUBLISHING (Restored)
        publish_target:
          registry: "s3://coreason-models/prod"
          tag: "v2.1.0-safety"
          trigger_deployment: false

        # INFRASTRUCTURE
        compute:
          batch_size: 4
          grad_accum: 4
        """)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "data" / "train-prod-2025-01-15" / "raw").mkdir(parents=True)
    manifest = _write(tmp_path / "manifests" / "prod.yaml", seed_example)
    code, output = run_cli(["validate", str(manifest)], capsys)
    assert code == 0, output
