"""The stage graph: frozen nodes with their params and where each input comes from.

Pure values: two graphs built from the same manifest are equal. The domain builds them
(opensem.stages.wiring); the core plans and runs them without knowing what a stage does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceInput(Frozen):
    """A file or directory of the project, named relative to the project root."""

    path: str


class UpstreamInput(Frozen):
    """The out/ directory of another stage of the same graph."""

    stage: str


Input = SourceInput | UpstreamInput


class StageNode(Frozen):
    name: str
    kind: str
    version: str  # the stage kind's code version: part of the lot
    params: dict[str, Any]  # what to make: part of the lot
    inputs: dict[str, Input]
    # How to run, not what to make (checkpoint interval, concurrency, trackers): handed to the stage
    # with its params, never part of the lot, so changing one never rebuilds anything.
    settings: dict[str, Any] = {}
    # Reads something a local stat cannot vouch for (a URL): every build must plan it again.
    volatile: bool = False
    # Needs most of the machine (a GPU, most of the RAM): two heavy stages never run at once (-j).
    heavy: bool = False
    # Reads or writes what only this machine may hold (a registry folder): never sent to a cluster.
    local: bool = False
    # Makes something true outside the store (publish writes the registry): never taken from the
    # shared cache, whose entry would say it happened somewhere else, so it runs where the build is.
    side_effect: bool = False
    # Shows a report after a build (evaluate, review, compare): the no-op fast path must not skip it.
    reports: bool = False

    def upstream(self) -> list[str]:
        """Names of the stages whose outputs this one reads."""
        return [i.stage for i in self.inputs.values() if isinstance(i, UpstreamInput)]


class StageGraph(Frozen):
    job_id: str
    manifest_path: Path
    project_root: Path
    nodes: list[StageNode]
    # Other manifests whose stages joined this graph (a merge of another expert's adapter): their
    # bytes shaped it too, so the no-op stamp watches them.
    included: list[Path] = []
    watched: list[
        Path
    ] = []  # paths planning looked for (conventional folders): one appearing can change the graph
    cache: dict[str, str] | None = (
        None  # {url, mode}: the shared stage cache the manifest names; how to build, not what
    )
    executor: str = (
        "local"  # where stages run: this process, or a Ray cluster (opensem.core.ray_executor)
    )

    def node(self, name: str) -> StageNode:
        """The node called name; KeyError when there is none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """Every node's name, in graph order."""
        return [n.name for n in self.nodes]

    def ancestors(self, name: str) -> set[str]:
        """Every stage this one depends on, directly or not."""
        found: set[str] = set()
        pending = self.node(name).upstream()
        while pending:
            up = pending.pop()
            if up not in found:
                found.add(up)
                pending.extend(self.node(up).upstream())
        return found
