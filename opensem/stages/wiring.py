"""Manifest -> StageGraph: each stage kind wires itself in, in pipeline order.

Pure: nothing here reads data or runs anything (a URL source is listed, not downloaded). Stages
find their inputs through channels: named outputs ("records", "split", "train", "adapter",
"report", ...) that the last stage to provide one answers for. So a stage that is left out
(no curation, no synthesis) changes nothing for the stages after it, and a new stage slots in by
consuming and providing channels. Some inputs accumulate instead (every golden set a merge
inherits): those are collections. Every problem found while wiring is collected with its manifest
key, line and a hint, and reported together: `opensem validate` is `plan` minus the store.

Another manifest of the project can join the graph (`include`): its stages are wired the same
way and added under `<job_id>/`, so building this manifest builds what it needs of the other, and
a change to the other's data or settings reaches this one's lots. A cycle is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from opensem.core.graph import Input, SourceInput, StageGraph, StageNode, UpstreamInput
from opensem.errors import Location, ManifestError, Problem
from opensem.settings.fields import lot_view, run_view, section_value
from opensem.settings.names import is_local_model_path
from opensem.settings.yaml import KeyPath, dotted
from opensem.stages.base import StageKind
from opensem.stages.loaded import LoadedManifest
from opensem.training.gguf import gguf_source


@dataclass
class Wiring:
    """The graph while stage kinds add themselves to it."""

    loaded: LoadedManifest
    nodes: list[StageNode] = field(default_factory=list)
    channels: dict[str, Input] = field(default_factory=dict)
    collections: dict[str, dict[str, Input]] = field(
        default_factory=dict
    )  # name -> {slot: input}, in order added
    problems: list[Problem] = field(default_factory=list)
    hub_model: str | None = None  # the base model when it is a hub id (no input slot to key it)
    included: list[Path] = field(default_factory=list)  # other manifests whose stages joined
    watched: list[Path] = field(
        default_factory=list
    )  # conventional paths looked for, present or not
    visiting: tuple[Path, ...] = ()  # manifests being wired around this one, for cycles
    # Problems that count only if nothing ever provides a channel (no data, but a merge provides the adapter).
    deferred: dict[str, list[Problem]] = field(default_factory=dict)
    # Channels a configured stage could not provide (its problem is recorded): stages after it stay
    # silent instead of reporting the same cause as their own problem.
    failed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        base = self.manifest.base_model
        if gguf_source(base) is not None:
            return  # the gguf_model stage provides the base
        if isinstance(base, str) and is_local_model_path(base):
            found = self.source(base, ("base_model",))
            if found is not None:
                self.channels["base"] = found
        elif isinstance(base, str):
            self.hub_model = base

    @property
    def manifest(self) -> Any:
        """The validated manifest."""
        return self.loaded.manifest

    @property
    def names(self) -> list[str]:
        """Names of the stages added so far."""
        return [node.name for node in self.nodes]

    def section(self, key: str) -> Any:
        """The validated value at a dotted manifest key."""
        return section_value(self.manifest, key)

    def channel(self, name: str) -> Input | None:
        """The input that answers for a channel now (the last stage that provided it)."""
        return self.channels.get(name)

    def fail(self, *channels: str) -> None:
        """A configured stage could not provide these channels; its problem is already recorded."""
        self.failed.update(channels)

    def has_failed(self, *channels: str) -> bool:
        """Whether a stage meant to provide any of channels could not be wired."""
        return any(channel in self.failed for channel in channels)

    def exists(self, relative: str) -> bool:
        """Whether a conventional path of the project exists; watched either way, so the no-op
        stamp notices when it appears or goes (opensem.core.stamp)."""
        path = self.loaded.project_root / relative
        if path not in self.watched:
            self.watched.append(path)
        return path.exists()

    def persona(self) -> str | None:
        """The persona's system message, read now (its text keys the lots of the stages using it)."""
        from opensem.data.persona import resolve_persona

        try:
            return resolve_persona(self.manifest.persona, self.loaded.project_root)
        except OSError as exc:
            self.problem(
                ("persona", "file"),
                f"cannot read the persona file: {exc.strerror or exc}",
                "check the path (relative to the project root)",
            )
            return None

    def base_inputs(self) -> dict[str, Input]:
        """{"base": ...} when the base model is a local folder or a tiny model stage (or was pretrained
        here), else nothing."""
        return {"base": self.channels["base"]} if "base" in self.channels else {}

    def original_base_inputs(self) -> dict[str, Input]:
        """The base the manifest names, before any pretraining: what baselines compare against (and its tokenizer)."""
        base = self.channels.get("original_base") or self.channels.get("base")
        return {"base": base} if base is not None else {}

    def keep_original_base(self) -> None:
        """Before a stage provides a new base (pretrain): remember the manifest's own."""
        if "base" in self.channels and "original_base" not in self.channels:
            self.channels["original_base"] = self.channels["base"]

    def base_identity(self) -> str:
        """What the base model is, to compare two manifests' bases: a hub id, a project path, a GGUF
        file or a tiny spec."""
        base = self.manifest.base_model
        if (gguf := gguf_source(base)) is not None:
            return (
                f"gguf {self.relative(gguf.path)}"
                if gguf.path
                else f"gguf {gguf.package} {gguf.file} {gguf.sha256 or ''}".rstrip()
            )
        if isinstance(base, str):
            identity = base if not is_local_model_path(base) else f"path {self.relative(base)}"
        else:
            identity = f"tiny {base.tiny.model_dump()}"
        trained_on = self.channels.get("base")
        if getattr(self.manifest, "pretrain", None) is not None and isinstance(
            trained_on, UpstreamInput
        ):
            identity += f", continued by {trained_on.stage}"  # the adapters were trained on what pretraining made
        return identity

    def collect(self, name: str, slot: str, value: Input) -> None:
        """Add an input to a collection (each golden set of the graph, say)."""
        self.collections.setdefault(name, {})[slot] = value

    def collection(self, name: str) -> dict[str, Input]:
        """A collection's inputs by slot, in the order added."""
        return dict(self.collections.get(name, {}))

    def unless_provided(self, channel: str, key: KeyPath, message: str, hint: str) -> None:
        """A problem that counts only if no stage ever provides channel."""
        self.deferred.setdefault(channel, []).append(Problem(message, self.where(key), hint))

    def include(self, manifest: str, key: KeyPath) -> Wiring | None:
        """Wire another manifest of this project into the graph; its stages join as `<job_id>/<stage>`.

        Returns the other manifest's wiring (its channels point at the joined stages), or None after
        recording a problem: outside the project, missing, invalid, or a cycle between manifests.
        """
        found = self.source(manifest, key)
        if found is None:
            return None
        path = (self.loaded.project_root / found.path).resolve()
        here = self.loaded.path.resolve()
        if path in (*self.visiting, here):
            cycle = " -> ".join(p.name for p in (*self.visiting, here, path))
            self.problem(
                key,
                f"manifests include each other in a cycle: {cycle}",
                "a merge can use another expert's adapter, not its own (through others)",
            )
            return None
        try:
            other = wire(self.loaded.load(path), (*self.visiting, here))
        except ManifestError as exc:
            self.problems.extend(p for p in exc.problems if p not in self.problems)
            return None
        if other.loaded.project_root != self.loaded.project_root:
            self.problem(
                key,
                f"{manifest} belongs to another project ({other.loaded.project_root})",
                "keep the manifests of a merge in one project",
            )
            return None
        prefix = f"{other.manifest.job_id}/"
        renamed = {node.name: f"{prefix}{node.name}" for node in other.nodes}
        for node in other.nodes:
            if renamed[node.name] not in self.names:
                inputs = {
                    slot: UpstreamInput(stage=renamed[i.stage])
                    if isinstance(i, UpstreamInput)
                    else i
                    for slot, i in node.inputs.items()
                }
                self.nodes.append(
                    node.model_copy(update={"name": renamed[node.name], "inputs": inputs})
                )
        other.channels = {
            name: UpstreamInput(stage=renamed[i.stage]) if isinstance(i, UpstreamInput) else i
            for name, i in other.channels.items()
        }
        self.included.extend(p for p in (path, *other.included) if p not in self.included)
        self.watched.extend(p for p in other.watched if p not in self.watched)
        return other

    def where(self, key: KeyPath) -> Location:
        """The location of a manifest key: file, line and key path."""
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
            self.problem(
                key,
                f"path {raw!r} points outside the project ({root})",
                "keep data inside the project folder so builds are reproducible",
            )
            return None
        if must_exist and not target.exists():
            self.problem(
                key,
                f"path {raw!r} does not exist",
                f"create {target} or fix the path; paths are relative to {root}",
            )
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
                path = (
                    *key,
                    *(part for part in err["loc"] if not (isinstance(part, str) and "=" in part)),
                )
                self.problem(
                    path,
                    err["msg"].removeprefix("Value error, "),
                    f"the {model.__name__} settings cannot take this value",
                )
            return None

    def add(
        self,
        kind: StageKind,
        params: BaseModel,
        inputs: Mapping[str, Input | None],
        provides: tuple[str, ...] = (),
        name: str | None = None,
        volatile: bool = False,
    ) -> UpstreamInput | None:
        """Add a node and return it as an input for later stages; its lot params and run settings
        are the two views of params. A stage whose inputs could not be found is left out (None)."""
        if any(value is None for value in inputs.values()):
            return None
        node = StageNode(
            name=name or kind.name,
            kind=kind.name,
            version=kind.version,
            params=lot_view(params),
            settings=run_view(params),
            inputs={slot: value for slot, value in inputs.items() if value is not None},
            volatile=volatile,
            heavy=bool(getattr(kind, "heavy", False)),
            local=bool(getattr(kind, "local", False)),
            side_effect=bool(getattr(kind, "side_effect", False)),
            reports=callable(getattr(kind, "show", None)),
        )
        self.nodes.append(node)
        if callable(getattr(kind, "release", None)):  # publish takes what it adds to a release
            self.collect(
                "release", getattr(kind, "release_slot", node.name), UpstreamInput(stage=node.name)
            )
        for channel in provides:
            self.channels[channel] = UpstreamInput(stage=node.name)
        return UpstreamInput(stage=node.name)


def wire(loaded: LoadedManifest, visiting: tuple[Path, ...] = ()) -> Wiring:
    """Every stage kind, in pipeline order, adds itself from the manifest; ManifestError with every
    problem found. Stages another manifest contributed but nothing here needs are dropped."""
    from opensem.stages import STAGES

    wiring = Wiring(loaded, visiting=visiting)
    for kind in STAGES.all():
        kind.wire(wiring)
    for channel, problems in wiring.deferred.items():
        # Another problem explains the missing channel better
        if channel not in wiring.channels and not wiring.problems:
            wiring.problems.extend(problems)
    if wiring.problems:
        raise ManifestError(wiring.problems)
    return wiring


def build_graph(loaded: LoadedManifest, project: Any = None) -> StageGraph:
    """The stage graph of one manifest, and of what its stages need of other manifests; `project`
    holds the project's own cache and executor (pyproject's [tool.opensem]), which the manifest's win over."""
    wiring = wire(loaded)
    m = loaded.manifest
    cache = m.cache or getattr(project, "cache", None)
    graph = StageGraph(
        job_id=m.job_id,
        manifest_path=loaded.path.resolve(),
        project_root=loaded.project_root,
        nodes=wiring.nodes,
        included=wiring.included,
        watched=wiring.watched,
        cache=cache.model_dump() if cache is not None else None,
        executor=m.executor or getattr(project, "executor", None) or "local",
    )
    own = [node.name for node in graph.nodes if "/" not in node.name]
    needed = set(own).union(*(graph.ancestors(name) for name in own))
    return graph.model_copy(update={"nodes": [node for node in graph.nodes if node.name in needed]})
