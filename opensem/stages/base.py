"""The contract every stage kind fulfils.

A stage kind is a class with a name, a code version, a pydantic Params model, the manifest
sections it owns, a `wire` method that adds it to the graph when the manifest asks for it, and a
`run` method. It reads only the inputs it declared (a path per slot) and writes only into out_dir.
Its Params are the manifest sections it reads (or `pick`ed views of them), so what a stage is
given, what enters its lot and what the schema says are one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from opensem.core.digests import walk_files
from opensem.core.stage import Progress, StageContext, StageResult, silent_progress
from opensem.settings.fields import StageParams  # what stage kinds build their Params on
from opensem.settings.sections import ManifestSection

if TYPE_CHECKING:
    from opensem.stages.wiring import Wiring

__all__ = [
    "Progress",
    "ReleasePart",
    "folder_files",
    "StageContext",
    "StageKind",
    "StageParams",
    "StageResult",
    "silent_progress",
]


# What a stage kind imports before a parallel build starts (`libraries`), so two threads never
# resolve transformers' lazy attributes at once: by what the kind does.
MODEL_LIBRARIES = ("torch", "peft", "transformers")
TRAINING_LIBRARIES = (*MODEL_LIBRARIES, "datasets", "trl")
EMBEDDING_LIBRARIES = ("sentence_transformers",)


@dataclass
class ReleasePart:
    """What a stage's output adds to a release: files (release path -> file) and model card facts
    (fields of opensem.release.card.Release; lists from several stages are joined)."""

    files: dict[str, Path] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


def folder_files(folder: Path, prefix: str = "") -> dict[str, Path]:
    """Every file under folder, as release paths under prefix."""
    return {f"{prefix}{path.relative_to(folder).as_posix()}": path for path in walk_files(folder)}


class StageKind(Protocol):
    """Read-only members, so a kind's narrower Params (or empty sections) still fits."""

    @property
    def name(self) -> str:
        """The kind's name, as the manifest and the lock write it."""

    @property
    def version(self) -> str:  # bump when the same params and inputs would now give other bytes
        """The code version: bump it when the same params and inputs would now give other bytes."""

    @property
    def Params(self) -> type[BaseModel]:  # noqa: N802
        """The pydantic model of what the stage is given."""

    @property
    def sections(self) -> tuple[ManifestSection, ...]:  # manifest sections this kind declares
        """The manifest sections this kind declares."""

    # Optional `heavy = True`: the kind loads a model (needs most of the machine), so under
    # `opensem build -j N` no two heavy stages run at once, and a cluster gives it most of a machine.
    # Optional `local = True`: the kind reads or writes a registry, which may be a folder of this
    # machine, so `executor: ray` runs it here rather than on the cluster.
    # Optional `side_effect = True`: its job is a change outside the store (publish), so it is never
    # taken from a shared cache. Optional `libraries`: what it imports (MODEL_LIBRARIES, ...).
    # Optional `show(out_dir, title, console)`: what it prints after a build (a report); a kind with
    # one keeps the no-op fast path from answering, since its report must be shown.
    # Optional `holds = "documents"` or `"dataset"`: the part of an expert's data its output
    # holds, so deleting that part (the UI's delete page) forgets the stage's results too.
    # Optional `release(out_dir, slot) -> ReleasePart`: what its output adds to a published release
    # (publish takes it under `release_slot`, by default the node's name).

    def wire(self, wiring: Wiring) -> None:
        """Add this stage to the graph (or not) from the manifest; pure: reads nothing but the project layout."""
        ...

    def run(
        self, params: Any, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Run the stage: read only inputs, write only into out_dir."""
