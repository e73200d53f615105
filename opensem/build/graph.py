"""The stage graph: frozen nodes with their params and where each input comes from.

Pure values: two graphs built from the same manifest are equal. `opensem.stages.wiring` builds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ConfigDict
from opensem.stages import get_stage


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceInput(Frozen):
    """A file or directory of the project, named relative to the project root."""

    path: str


class UpstreamInput(Frozen):
    """The out/ directory of another stage of the same graph."""

    stage: str


Input = Union[SourceInput, UpstreamInput]


class StageNode(Frozen):
    name: str
    kind: str
    params: dict[str, Any]
    inputs: dict[str, Input]
    # How to run, not what to make (checkpoint interval, hardware policy, trackers): handed to the
    # stage through its context, never part of the lot, so changing one never rebuilds anything.
    settings: dict[str, Any] = {}

    @property
    def version(self) -> str:
        return get_stage(self.kind).version

    def upstream(self) -> list[str]:
        return [i.stage for i in self.inputs.values() if isinstance(i, UpstreamInput)]


class StageGraph(Frozen):
    job_id: str
    manifest_path: Path
    project_root: Path
    nodes: list[StageNode]

    def node(self, name: str) -> StageNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def ancestors(self, name: str) -> set[str]:
        found: set[str] = set()
        pending = self.node(name).upstream()
        while pending:
            up = pending.pop()
            if up not in found:
                found.add(up)
                pending.extend(self.node(up).upstream())
        return found
