"""Manifest -> StageGraph: which stages a manifest needs, their params and where inputs come from.

Pure: nothing here reads data or runs anything. Each stage kind is wired by one method of
GraphBuilder, called in pipeline order; a stage without configuration is left out, and the
records flow through whichever data stages are present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opensem.errors import Location, ManifestError, Problem
from opensem.graph import Input, SourceInput, StageGraph, StageNode, UpstreamInput
from opensem.manifest.loader import LoadedManifest
from opensem.manifest.models import TinyBaseModel, is_local_model_path
from opensem.stages import get_stage

# Where a stage param comes from in the manifest, for errors the stage itself raises.
MANIFEST_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("train", "method"): ("method_config", "type"),
    ("train", "target_modules"): ("method_config", "target_modules"),
    ("tiny_model", "hidden_size"): ("base_model", "tiny", "hidden_size"),
}


def build_graph(loaded: LoadedManifest) -> StageGraph:
    """The default stage graph of one manifest."""
    return GraphBuilder(loaded).build()


@dataclass
class GraphBuilder:
    loaded: LoadedManifest
    nodes: list[StageNode] = field(default_factory=list)
    base_inputs: dict[str, Input] = field(default_factory=dict)
    hub_model: str | None = None
    records_from: str = "ingest"  # the stage whose out/ holds the current records.jsonl
    train_from: str = "split"  # the stage whose out/ holds train.jsonl

    def build(self) -> StageGraph:
        self.base_model()
        self.ingest()
        self.split()
        self.train()
        self.evaluate()
        self.publish()
        m = self.loaded.manifest
        return StageGraph(job_id=m.job_id, manifest_path=self.loaded.path.resolve(), project_root=self.loaded.project_root, nodes=self.nodes)

    def add(self, name: str, kind: str, params: dict[str, Any], inputs: dict[str, Input]) -> None:
        """Append a node, normalizing params through the stage's own model (defaults explicit).

        The manifest schema admits values a stage may still refuse (a training method this
        version does not implement); those are reported against the manifest key they came from.
        """
        try:
            normalized = get_stage(kind).Params.model_validate(params).model_dump(mode="json")
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = MANIFEST_KEYS.get((kind, str(err["loc"][0])), ()) if err["loc"] else ()
                where = Location(str(self.loaded.path), self.loaded.line_of(key), ".".join(key) or f"{name} stage")
                problems.append(Problem(err["msg"].removeprefix("Value error, "), where, f"the {kind} stage cannot use this value"))
            raise ManifestError(problems) from None
        self.nodes.append(StageNode(name=name, kind=kind, params=normalized, inputs=inputs))

    def relative(self, raw: str) -> str:
        """A manifest path as a posix path relative to the project root (the loader checked it)."""
        target = (self.loaded.project_root / Path(raw).expanduser()).resolve()
        return target.relative_to(self.loaded.project_root).as_posix() or "."

    def base_model(self) -> None:
        base = self.loaded.manifest.base_model
        if isinstance(base, TinyBaseModel):
            self.add("base_model", "tiny_model", base.tiny.model_dump(), {})
            self.base_inputs = {"base": UpstreamInput(stage="base_model")}
        elif is_local_model_path(base):
            self.base_inputs = {"base": SourceInput(path=self.relative(base))}
        else:
            self.hub_model = base

    def ingest(self) -> None:
        sources = self.loaded.sources()
        slots: dict[str, Input] = {f"source{i}": SourceInput(path=self.relative(s.path)) for i, s in enumerate(sources)}
        specs = [{"slot": slot, "path": s.path, "format": s.format} for slot, s in zip(slots, sources)]
        self.add("ingest", "ingest", {"sources": specs}, slots)
        self.records_from = "ingest"

    def split(self) -> None:
        m = self.loaded.manifest
        seed = m.data.split.seed if m.data.split.seed is not None else m.seed
        params = {"test_fraction": m.data.split.test_fraction, "seed": seed}
        self.add("split", "split", params, {"records": UpstreamInput(stage=self.records_from)})
        self.train_from = "split"

    def train(self) -> None:
        m = self.loaded.manifest
        method, training, compute = m.method_config, m.training, m.compute
        params = {
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
            "base_model": self.hub_model,
        }
        self.add("train", "train", params, {"train": UpstreamInput(stage=self.train_from), **self.base_inputs})

    def evaluate(self) -> None:
        m = self.loaded.manifest
        params = {
            "max_seq_length": m.training.max_seq_length,
            "batch_size": m.evaluation.batch_size,
            "max_records": m.evaluation.max_records,
            "base_model": self.hub_model,
        }
        inputs: dict[str, Input] = {"test": UpstreamInput(stage="split"), "adapter": UpstreamInput(stage="train"), **self.base_inputs}
        self.add("evaluate", "evaluate", params, inputs)

    def publish(self) -> None:
        m = self.loaded.manifest
        target = m.publish_target
        if target is None:
            return
        tiny = isinstance(m.base_model, TinyBaseModel)
        params = {
            "job_id": m.job_id,
            "registry": target.registry,
            "tag": target.tag,
            "trigger_deployment": target.trigger_deployment,
            # A tiny base model is small enough to ship beside its adapter, so the release is whole.
            "base_model": "base_model/model" if tiny else str(m.base_model),
        }
        inputs: dict[str, Input] = {
            "adapter": UpstreamInput(stage="train"),
            "report": UpstreamInput(stage="evaluate"),
            "manifest": SourceInput(path=self.relative(str(self.loaded.path.resolve()))),
            **(self.base_inputs if tiny else {}),
        }
        self.add("publish", "publish", params, inputs)
