"""The contract between the build core and whatever runs stages.

The engine hands a StageRunner a node of the graph, the paths of its inputs, an empty out_dir and
a StageContext; the runner does the work and reports a StageResult. The core never learns what a
stage kind is: the domain (opensem.stages) implements the runner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opensem.core.graph import StageNode


class Progress(Protocol):
    """A progress handle for long work (training steps, records embedded)."""

    def advance(self, amount: int = 1) -> None:
        """Count amount more units of work done."""

    def close(self) -> None:
        """The work is over (done, or stopped)."""


class ProgressFactory(Protocol):
    def __call__(self, description: str, total: int | None) -> Progress:
        """A progress handle for description, with total units when known."""


class _SilentProgress:
    def advance(self, amount: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def silent_progress(description: str, total: int | None) -> Progress:
    """A progress handle that shows nothing (tests, library use)."""
    return _SilentProgress()


@dataclass(frozen=True)
class StageContext:
    """What a stage may know about its surroundings besides its params and inputs."""

    project_root: Path
    job_id: str
    stage_name: str
    work_dir: Path  # scratch space keyed by the lot (checkpoints); survives a killed run
    cache_dir: Path  # caches shared across lots (teacher answers, embeddings)
    lot: str = ""  # this run's own lot number (a publish tag may embed it)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("opensem.stage"))
    progress: ProgressFactory = silent_progress
    # A figure measured while working (the training loss at a step), for a live view.
    measure: Callable[[str, int, float], None] = field(default=lambda name, step, value: None)
    # Lots and output digests of upstream stages: for provenance (model cards), never an input.
    lineage: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class StageResult:
    """What a stage reports back: metrics for meta.json, a one-line summary for the console, and
    entries the lock file records at its top level (what was published, and where)."""

    summary: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    lock: dict[str, Any] = field(default_factory=dict)


class StageRunner(Protocol):
    """Runs one node of a graph; implemented by the domain (opensem.stages.runner)."""

    def run(
        self, node: StageNode, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Run node's stage kind with its inputs, writing into out_dir."""

    def library_versions(self) -> dict[str, str]:
        """Versions of whatever shaped a result, recorded in the store entry's meta.json."""
        ...

    def prepare(self, kinds: set[str]) -> None:
        """Before stages of these kinds run in threads at once (build -j): import what they need here,
        in one thread, since some libraries' lazy imports are not safe to race."""
        ...
