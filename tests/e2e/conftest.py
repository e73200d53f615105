"""End-to-end fixtures: a copy of the demo project in a temporary folder, driven through the CLI."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli import run_cli

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Project:
    root: Path
    name: str = "tiny-demo"  # the manifest the helpers below build

    @property
    def manifest(self) -> Path:
        return self.root / "manifests" / f"{self.name}.yaml"

    @property
    def lock(self) -> Path:
        return self.root / "manifests" / f"{self.name}.lock"

    def lock_data(self) -> dict:
        return json.loads(self.lock.read_text())

    def run(self, *args: str) -> tuple[int, str]:
        """Run the real CLI in this process; returns (exit code, everything it printed)."""
        return run_cli(*args)

    def build(self, *extra: str) -> tuple[list[str], str]:
        """Build the demo; returns the stages that ran and the output."""
        code, output = self.run("build", str(self.manifest), *extra)
        assert code == 0, output
        ran = [
            line.split()[1]
            for line in output.splitlines()
            if line.strip().startswith("✓") and "built in" in line
        ]
        return ran, output

    def edit(self, relative: str, old: str, new: str) -> str:
        path = self.root / relative
        before = path.read_text()
        assert old in before, f"{old!r} not in {relative}"
        path.write_text(before.replace(old, new, 1))
        return before

    def set_section(self, key: str, text: str) -> None:
        """Replace a top-level section of the demo manifest (from `key:` to the next top-level line)."""
        lines = self.manifest.read_text().splitlines(keepends=True)
        start = lines.index(f"{key}:\n")
        end = next(
            (
                i
                for i in range(start + 1, len(lines))
                if lines[i].strip() and not lines[i].startswith(" ")
            ),
            len(lines),
        )
        self.manifest.write_text("".join(lines[:start]) + text + "".join(lines[end:]))


def copy_project(destination: Path, *jobs: str, build: str | None = None) -> Project:
    """A project holding the shipped manifests (and data, where there is some) of jobs."""
    (destination / "manifests").mkdir(parents=True)
    for job in jobs:
        shutil.copy(REPO / "manifests" / f"{job}.yaml", destination / "manifests" / f"{job}.yaml")
        if (REPO / "data" / job).is_dir():
            shutil.copytree(REPO / "data" / job, destination / "data" / job)
    shutil.copy(REPO / "dodo.py", destination / "dodo.py")
    return Project(destination, build or jobs[0])


def copy_demo(destination: Path) -> Project:
    return copy_project(destination, "tiny-demo")


@pytest.fixture(scope="module")
def built_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, list[str], str]:
    """The demo project built once from scratch: (project, stages that ran, build output)."""
    project = copy_demo(tmp_path_factory.mktemp("demo"))
    ran, output = project.build()
    return project, ran, output
