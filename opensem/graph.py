"""Manifest -> StageGraph: which stages a manifest needs, their params and where inputs come from.

Pure: nothing here reads data or runs anything. Nodes are frozen values, so two graphs built
from the same manifest are equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from opensem.errors import Location, ManifestError, Problem
from opensem.manifest.loader import LoadedManifest
from opensem.manifest.models import TinyBaseModel, is_local_model_path
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


def _node(loaded: LoadedManifest, name: str, kind: str, params: dict[str, Any], inputs: dict[str, Input]) -> StageNode:
    """Normalize params through the stage's own model so defaults are explicit in the lot.

    The manifest schema admits values a stage may still refuse (a training method this version
    does not implement); those are reported against the manifest key they came from.
    """
    try:
        normalized = get_stage(kind).Params.model_validate(params).model_dump(mode="json")
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = MANIFEST_KEYS.get((kind, str(err["loc"][0])), ()) if err["loc"] else ()
            where = Location(str(loaded.path), loaded.line_of(key), ".".join(key) or f"{name} stage")
            problems.append(Problem(err["msg"].removeprefix("Value error, "), where, f"the {kind} stage cannot use this value"))
        raise ManifestError(problems) from None
    return StageNode(name=name, kind=kind, params=normalized, inputs=inputs)


# Where a stage param comes from in the manifest, for errors the stage itself raises.
MANIFEST_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("train", "method"): ("method_config", "type"),
    ("train", "target_modules"): ("method_config", "target_modules"),
    ("tiny_model", "hidden_size"): ("base_model", "tiny", "hidden_size"),
}


def build_graph(loaded: LoadedManifest) -> StageGraph:
    """The default stage graph of one manifest; stages without configuration are left out."""
    m = loaded.manifest
    nodes: list[StageNode] = []
    base_inputs: dict[str, Input] = {}
    hub_model: str | None = None
    if isinstance(m.base_model, TinyBaseModel):
        nodes.append(_node(loaded, "base_model", "tiny_model", m.base_model.tiny.model_dump(), {}))
        base_inputs = {"base": UpstreamInput(stage="base_model")}
    elif is_local_model_path(m.base_model):
        base_inputs = {"base": SourceInput(path=_relative(loaded, m.base_model))}
    else:
        hub_model = m.base_model

    sources = loaded.sources()
    slots = {f"source{i}": SourceInput(path=_relative(loaded, s.path)) for i, s in enumerate(sources)}
    specs = [{"slot": slot, "path": s.path, "format": s.format} for slot, s in zip(slots, sources)]
    nodes.append(_node(loaded, "ingest", "ingest", {"sources": specs}, dict(slots)))

    split = m.data.split
    seed = split.seed if split.seed is not None else m.seed
    nodes.append(_node(loaded, "split", "split", {"test_fraction": split.test_fraction, "seed": seed}, {"records": UpstreamInput(stage="ingest")}))

    method, training, compute = m.method_config, m.training, m.compute
    train_params = {
        "method": method.type,
        "rank": method.rank,
        "alpha": method.alpha or 2 * method.rank,
        "dropout": method.dropout,
        "target_modules": method.target_modules,
        "epochs": training.epochs,
        "max_steps": training.max_steps,
        "learning_rate": training.learning_rate,
        "max_seq_length": training.max_seq_length,
        "logging_steps": training.logging_steps,
        "batch_size": compute.batch_size,
        "grad_accum": compute.grad_accum,
        "seed": m.seed,
        "base_model": hub_model,
    }
    nodes.append(_node(loaded, "train", "train", train_params, {"train": UpstreamInput(stage="split"), **base_inputs}))

    evaluation = m.evaluation
    eval_params = {
        "max_seq_length": training.max_seq_length,
        "batch_size": evaluation.batch_size,
        "max_records": evaluation.max_records,
        "base_model": hub_model,
    }
    eval_inputs: dict[str, Input] = {"test": UpstreamInput(stage="split"), "adapter": UpstreamInput(stage="train"), **base_inputs}
    nodes.append(_node(loaded, "evaluate", "evaluate", eval_params, eval_inputs))

    target = m.publish_target
    if target is not None:
        publish_params = {
            "job_id": m.job_id,
            "registry": target.registry,
            "tag": target.tag,
            "trigger_deployment": target.trigger_deployment,
            "base_model": hub_model or _base_description(m.base_model),
        }
        # A tiny base model is small enough to ship beside its adapter, so the release is whole.
        shipped_base = base_inputs if isinstance(m.base_model, TinyBaseModel) else {}
        publish_inputs: dict[str, Input] = {
            "adapter": UpstreamInput(stage="train"),
            "report": UpstreamInput(stage="evaluate"),
            "manifest": SourceInput(path=_relative(loaded, str(loaded.path.resolve()))),
            **shipped_base,
        }
        nodes.append(_node(loaded, "publish", "publish", publish_params, publish_inputs))
    return StageGraph(job_id=m.job_id, manifest_path=loaded.path.resolve(), project_root=loaded.project_root, nodes=nodes)


def _relative(loaded: LoadedManifest, raw: str) -> str:
    """A manifest path as a posix path relative to the project root (the loader checked it)."""
    target = (loaded.project_root / Path(raw).expanduser()).resolve()
    return target.relative_to(loaded.project_root).as_posix() or "."


def _base_description(base: object) -> str:
    """How the model card names the base: a tiny base ships inside the release folder."""
    return "base_model/model" if isinstance(base, TinyBaseModel) else str(base)
