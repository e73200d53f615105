"""`opensem build -j 2` on two manifests in a fresh process: stages of both run, lines name their
manifest, and the result equals two one-at-a-time builds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO
from tests.e2e.test_concurrent_builds import MANIFEST

# dedup (sentence-transformers) beside base_model (transformers): two first imports that must not race.
TRAINING = (
    "curation: {dedup: {threshold: 0.97}}\ntraining: {max_steps: 6, logging_steps: 3, "
    "max_seq_length: 64}\ncompute: {batch_size: 4}\n"
)


def project(root: Path) -> Path:
    (root / "manifests").mkdir(parents=True)
    (root / "data" / "twice").mkdir(parents=True)
    shutil.copy(
        REPO / "data" / "tiny-demo" / "instructions.jsonl",
        root / "data" / "twice" / "instructions.jsonl",
    )
    (root / "manifests" / "one.yaml").write_text(
        MANIFEST.replace("job_id: twice", "job_id: one") + TRAINING
    )
    (root / "manifests" / "two.yaml").write_text(
        MANIFEST.replace("job_id: twice", "job_id: two") + TRAINING + "seed: 7\n"
    )
    return root


@pytest.mark.slow
def test_two_manifests_build_at_once_as_they_build_one_by_one(tmp_path: Path) -> None:
    opensem = [sys.executable, "-m", "opensem", "build"]
    together = project(tmp_path / "together")
    done = subprocess.run(
        [*opensem, "-j", "2", "manifests/one.yaml", "manifests/two.yaml"],
        cwd=together,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "✓ one:train" in done.stderr and "✓ two:train" in done.stderr
    alone = project(tmp_path / "alone")
    for name in ("one", "two"):
        assert (
            subprocess.run(
                [*opensem, f"manifests/{name}.yaml"], cwd=alone, capture_output=True, text=True
            ).returncode
            == 0
        )
    for name in ("one", "two"):
        lots = {
            s: e["lot"]
            for s, e in json.loads((together / "manifests" / f"{name}.lock").read_text())[
                "stages"
            ].items()
        }
        assert lots == {
            s: e["lot"]
            for s, e in json.loads((alone / "manifests" / f"{name}.lock").read_text())[
                "stages"
            ].items()
        }
