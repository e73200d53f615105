"""Manifest -> StageGraph: each stage kind wires itself in, in pipeline order.

Pure: nothing here reads data or runs anything (a URL source is listed, not downloaded). Stages
find their inputs through channels: named outputs ("records", "split", "train", "adapter",
"report", ...) that the last stage to provide one answers for. So a stage that is left out
(no curation, no synthesis) changes nothing for the stages after it, and a new stage slots in by
consuming and providing channels. Every problem found while wiring is collected with its manifest
key, line and a hint, and reported together: `opensem validate` is `plan` minus the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from opensem.build.graph import Input, SourceInput, StageGraph, StageNode, UpstreamInput
from opensem.errors import Location, ManifestError, Problem
from opensem.manifest.fields import lot_view, run_view
from opensem.manifest.loader import KeyPath, LoadedManifest, dotted
from opensem.manifest.models import is_local_model_path, section_value
from opensem.stages.base import StageKind


@dataclass
class Wiring:
    """The graph while stage kinds add themselves to it."""

    loaded: LoadedManifest
    nodes: list[StageNode] = field(default_factory=list)
    channels: dict[str, Input] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    hub_model: str | None = None  # the base model when it is a hub id (no input slot to key it)

    def __post_init__(self) -> None:
        base = self.manifest.base_model
        if isinstance(base, str) and is_local_model_path(base):
            found = self.source(base, ("base_model",))
            if found is not None:
                self.channels["base"] = found
        elif isinstance(base, str):
            self.hub_model = base

    @property
    def manifest(self) -> Any:
        return self.loaded.manifest

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def section(self, key: str) -> Any:
        """The validated value at a dotted manifest key."""
        return section_value(self.manifest, key)

    def channel(self, name: str) -> Input | None:
        """The input that answers for a channel now (the last stage that provided it)."""
        return self.channels.get(name)

    def base_inputs(self) -> dict[str, Input]:
        """{"base": ...} when the base model is a local folder or a tiny model stage, else nothing."""
        return {"base": self.channels["base"]} if "base" in self.channels else {}

    def where(self, key: KeyPath) -> Location:
        return Location(str(self.loaded.path), self.loaded.line_of(key), dotted(key))

    def problem(self, key: KeyPath, message: str, hint: str = "") -> None:
        """Record a problem at a manifest key; the same problem twice is reported once."""
        found = Problem(message, self.where(key), hint)
        if found not in self.problems:
            self.problems.append(found)

    def relative(self, raw: str) -> str:
        """A manifest path as a posix path relative to the project root."""
        root = self.loaded.project_root
        target = (root / Path(raw).expanduser()).resolve()
        return target.relative_to(root).as_posix() or "."

    def source(self, raw: str, key: KeyPath, must_exist: bool = True) -> SourceInput | None:
        """A project path from the manifest as an input; a problem (and None) when it leaves the
        project or is missing."""
        root = self.loaded.project_root
        target = (root / Path(raw).expanduser()).resolve()
        if not target.is_relative_to(root):
            self.problem(key, f"path {raw!r} points outside the project ({root})", "keep data inside the project folder so builds are reproducible")
            return None
        if must_exist and not target.exists():
            self.problem(key, f"path {raw!r} does not exist", f"create {target} or fix the path; paths are relative to {root}")
            return None
        return SourceInput(path=self.relative(raw))

    def model_inputs(self, model: str, key: KeyPath) -> dict[str, Input]:
        """{"model": ...} for a model given as a local folder (its bytes key the lot); nothing for a hub id."""
        if not is_local_model_path(model):
            return {}
        found = self.source(model, key)
        return {"model": found} if found is not None else {}

    def params(self, model: type[BaseModel], values: dict[str, Any], key: KeyPath = ()) -> Any:
        """model(values), or None after recording each validation error at key + its location."""
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            for err in exc.errors():
                path = (*key, *(part for part in err["loc"] if not (isinstance(part, str) and "=" in part)))
                self.problem(path, err["msg"].removeprefix("Value error, "), f"the {model.__name__} settings cannot take this value")
            return None

    def add(
        self,
        kind: StageKind,
        params: BaseModel,
        inputs: dict[str, Input | None],
        provides: tuple[str, ...] = (),
        name: str | None = None,
        volatile: bool = False,
    ) -> None:
        """Add a node; its lot params and run settings are the two views of params. A stage whose
        inputs could not be found (a problem was recorded) is left out."""
        if any(value is None for value in inputs.values()):
            return
        node = StageNode(
            name=name or kind.name,
            kind=kind.name,
            version=kind.version,
            params=lot_view(params),
            settings=run_view(params),
            inputs={slot: value for slot, value in inputs.items() if value is not None},
            volatile=volatile,
        )
        self.nodes.append(node)
        for channel in provides:
            self.channels[channel] = UpstreamInput(stage=node.name)


def build_graph(loaded: LoadedManifest) -> StageGraph:
    """The stage graph of one manifest; ManifestError with every problem found while wiring."""
    from opensem.stages import STAGES

    wiring = Wiring(loaded)
    for kind in STAGES.all():
        kind.wire(wiring)
    if wiring.problems:
        raise ManifestError(wiring.problems)
    m = loaded.manifest
    return StageGraph(job_id=m.job_id, manifest_path=loaded.path.resolve(), project_root=loaded.project_root, nodes=wiring.nodes)
