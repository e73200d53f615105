"""Fault trials: a build killed with SIGKILL at seeded random moments leaves no half store entry,
verify says what is missing, and the next build completes (bench/kill_trials.py runs 30 of these
on the demo)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opensem.core.digests import DigestCache
from opensem.core.store import Store
from tests.e2e.conftest import REPO
from tests.e2e.test_concurrent_builds import MANIFEST

TRAINING = "training: {max_steps: 40, save_steps: 5, logging_steps: 5, max_seq_length: 64}\ncompute: {batch_size: 4}\n"


def whole(store: Store) -> list[str]:
    """Entries that are not whole (meta missing, or out/ not what the meta records)."""
    digests = DigestCache(None)
    return [
        entry.name
        for entry in store.root.glob("??/*")
        if not (store.has(entry.name) and store.intact(entry.name, digests))
    ]


@pytest.mark.slow
def test_builds_killed_at_random_moments_leave_nothing_half_built(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "twice.yaml").write_text(MANIFEST + TRAINING)
    (tmp_path / "data" / "twice").mkdir(parents=True)
    shutil.copy(
        REPO / "data" / "tiny-demo" / "instructions.jsonl",
        tmp_path / "data" / "twice" / "instructions.jsonl",
    )
    opensem = [sys.executable, "-m", "opensem"]
    store = Store(tmp_path / "build" / "store")
    rng = random.Random(3)
    for _ in range(3):
        build = subprocess.Popen(
            [*opensem, "build", "manifests/twice.yaml", "--until", "train"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(rng.uniform(2.0, 12.0))
        if build.poll() is None:
            os.kill(build.pid, signal.SIGKILL)
        build.communicate()
        assert whole(store) == []
        verified = subprocess.run(
            [*opensem, "verify", "manifests/twice.yaml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert "Traceback" not in verified.stdout + verified.stderr
    done = subprocess.run(
        [*opensem, "build", "manifests/twice.yaml", "--until", "train"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert whole(store) == [] and not list((store.root / ".tmp").iterdir())
