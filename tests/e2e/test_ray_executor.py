"""The demo built as tasks on a real local Ray cluster: every stage but publish runs in a worker
with its own store, results come back through the shared cache, and a local build afterwards has
nothing to do. The lots are the ones a local build makes (the committed lock's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opensem.core.store import Store
from tests.e2e.conftest import REPO, copy_demo
from tests.servers.ray_cluster import RayCluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    with RayCluster(tmp_path_factory.mktemp("ray-workers")) as cluster:
        yield cluster


def opensem(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own: a Ray driver joins its cluster once per process."""
    return subprocess.run(
        [sys.executable, "-m", "opensem.cli", *args],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def lots(lock: Path) -> dict[str, str]:
    return {name: entry["lot"] for name, entry in json.loads(lock.read_text())["stages"].items()}


def test_the_demo_builds_on_a_ray_cluster_and_is_then_up_to_date_locally(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    project = copy_demo(tmp_path / "project")
    env = {
        "RAY_ADDRESS": ray_cluster.address,
        "OPENSEM_CACHE": str(tmp_path / "shared"),
        "OPENSEM_CACHE_MODE": "read-write",
    }
    done = opensem(project.root, env, "build", str(project.manifest), "--executor", "ray")
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert f"ray: {ray_cluster.address}, 2 CPUs, 0 GPUs" in said
    assert "Built 13 stage(s), 0 up to date" in said, said
    assert lots(project.lock) == lots(
        REPO / "manifests" / "tiny-demo.lock"
    )  # same lots as a local build

    worker = Store(ray_cluster.worker_dir / "store")
    built_there = {name for name, lot in lots(project.lock).items() if worker.has(lot)}
    assert built_there == set(lots(project.lock)) - {
        "publish"
    }  # publish writes the registry folder of this machine
    assert (project.root / "build" / "registry" / "tiny-demo").is_dir()

    for stamp in (project.root / "build" / "stamps").glob("*"):
        stamp.unlink()  # plan every stage again rather than trusting the no-op stamp
    local = opensem(project.root, {}, "build", str(project.manifest))
    said = local.stdout + local.stderr
    assert local.returncode == 0 and "Nothing to do: all 13 stages up to date" in said, said


@pytest.mark.parametrize("mode", [None, "read"])
def test_ray_needs_a_cache_it_can_write(tmp_path: Path, mode: str | None) -> None:
    project = copy_demo(tmp_path / "project")
    env = {
        "OPENSEM_CACHE": str(tmp_path / "shared") if mode else "",
        "OPENSEM_CACHE_MODE": mode or "",
    }
    done = opensem(project.root, env, "build", str(project.manifest), "--executor", "ray")
    assert done.returncode == 2 and "needs a read-write stage cache" in done.stdout + done.stderr, (
        done.stdout + done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (project.root / "build" / "store").exists()
