"""Two `opensem build` processes on one project at once: every lot is built once, the other build
reuses it, and the store and lock come out whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO

MANIFEST = """job_id: twice
base_model:
  tiny: {hidden_size: 32, num_heads: 2, num_layers: 1, vocab_size: 500}
data:
  sources:
    - path: data/twice/instructions.jsonl
      format: alpaca
"""


def test_two_builds_at_once_build_each_lot_once(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "twice.yaml").write_text(MANIFEST)
    (tmp_path / "data" / "twice").mkdir(parents=True)
    shutil.copy(
        REPO / "data" / "tiny-demo" / "instructions.jsonl",
        tmp_path / "data" / "twice" / "instructions.jsonl",
    )
    command = [
        sys.executable,
        "-m",
        "opensem",
        "build",
        "manifests/twice.yaml",
        "--until",
        "tokenize",
    ]
    builds = [
        subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [b.communicate(timeout=300)[0] for b in builds]
    assert [b.returncode for b in builds] == [0, 0], outputs
    built = [
        line.split()[1]
        for text in outputs
        for line in text.splitlines()
        if line.strip().startswith("✓") and "built in" in line
    ]
    assert sorted(built) == ["base_model", "ingest", "split", "tokenize"], (
        outputs
    )  # each once, in one build or the other
    lock = json.loads((tmp_path / "manifests" / "twice.lock").read_text())
    store = tmp_path / "build" / "store"
    assert all(
        (store / entry["lot"][:2] / entry["lot"] / "meta.json").is_file()
        for entry in lock["stages"].values()
    )
    assert not list((store / ".tmp").iterdir())  # no half entry left behind
