"""The contract every stage kind fulfils, and the context it runs in.

A stage kind is a class with a name, a pydantic Params model, a code version and a run method.
It reads only the inputs it declared (a path per slot) and writes only into out_dir.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict


class StageParams(BaseModel):
    """Base of every stage's Params: strict and frozen, so params are values."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Progress(Protocol):
    """A progress handle for long work (training steps, records embedded)."""

    def advance(self, amount: int = 1) -> None: ...

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, description: str, total: int | None) -> Progress: ...


class _SilentProgress:
    def advance(self, amount: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def silent_progress(description: str, total: int | None) -> Progress:
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
    # Lots and output digests of upstream stages: for provenance (model cards), never an input.
    lineage: dict[str, dict[str, str]] = field(default_factory=dict)
    # Run settings from the manifest that never enter the lot (opensem.build.graph.StageNode.settings).
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageResult:
    """What a stage reports back: metrics for meta.json and a one-line summary for the console."""

    summary: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


class StageKind(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]
    Params: ClassVar[type[StageParams]]

    def run(self, params: Any, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult: ...
