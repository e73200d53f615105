"""A full disk under build/: the demo's pretrain stage fails with a clear error, the store keeps
only whole entries, and once there is room the next build reuses them and builds only what is left.

The disk is a real 2.6 MB tmpfs mounted in a user and mount namespace of its own (`unshare`), so
nothing outside the test sees it and nothing needs cleaning up if the test dies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import copy_demo

pytestmark = pytest.mark.slow

SCRIPT = """
mount -t tmpfs -o size=2600k tmpfs build || exit 90
{opensem} build manifests/tiny-demo.yaml --until pretrain
echo "first build exit $?"
find build/store -mindepth 1 -maxdepth 3 ! -path '*/.locks*' ! -path '*/.failed*' | sort | sed 's/^/stored: /'
mount -o remount,size=64m build
{opensem} build manifests/tiny-demo.yaml --until pretrain
echo "second build exit $?"
"""


def can_mount_a_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs -o size=1m tmpfs /mnt",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not can_mount_a_tmpfs(),
    reason="this machine allows no private tmpfs mount (unshare --user --mount)",
)
def test_a_full_disk_fails_a_stage_cleanly_and_the_next_build_finishes(tmp_path: Path) -> None:
    project = copy_demo(tmp_path / "project")
    (project.root / "build").mkdir()
    opensem = f"{sys.executable} -m opensem.cli"
    done = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            SCRIPT.format(opensem=opensem),
        ],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    said = done.stdout
    first, second = said.split("first build exit")

    assert "✗ pretrain      failed" in first, said
    assert (
        "stage pretrain failed: no space left on the disk holding" in first
        and "hint: free space there" in first
    ), said
    assert "Traceback" not in said
    assert second.startswith(" 1\n"), said  # the first build's exit code

    stored = [
        line.split("stored: ", 1)[1] for line in said.splitlines() if line.startswith("stored: ")
    ]
    entries = [path for path in stored if path.count("/") == 3]  # build/store/<xx>/<lot>
    assert len(entries) == 6, (
        stored
    )  # base_model, ingest, synthesize, dedup, split, decontaminate, each whole
    assert all(f"{entry}/meta.json" in stored for entry in entries), stored
    assert not [path for path in stored if path.startswith("build/store/.tmp/")], (
        stored
    )  # the half-made pretrain entry is gone

    assert "Built 1 stage(s), 6 up to date" in second and "second build exit 0" in second, said
