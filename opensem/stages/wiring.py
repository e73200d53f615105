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
from opensem.build.graph import Input, SourceInput, StageGraph, StageNode, UpstreamInput
from opensem.manifest.loader import LoadedManifest
from opensem.manifest.models import TinyBaseModel, is_local_model_path
from opensem.stages import get_stage

# Where a stage param comes from in the manifest, for errors the stage itself raises.
MANIFEST_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("train", "method"): ("method_config", "type"),
    ("train", "target_modules"): ("method_config", "target_modules"),
    ("train", "batch_size"): ("compute", "batch_size"),
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
        self.synthesize()
        self.dedup()
        self.split()
        self.decontaminate()
        self.baseline()
        self.train()
        self.evaluate()
        self.gate()
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
        from opensem.data.sources import ingest_sources

        slots, specs = ingest_sources(self.loaded, self.relative)  # paths, globs and fsspec URLs
        chunking = self.loaded.manifest.data.chunking
        self.add("ingest", "ingest", {"sources": specs, "chunk_size": chunking.size, "chunk_overlap": chunking.overlap}, slots)
        self.records_from = "ingest"

    def synthesize(self) -> None:
        from opensem.stages.synthesize import synthesize_params

        synthesis = self.loaded.manifest.synthesis
        if synthesis is None:
            return
        self.add("synthesize", "synthesize", synthesize_params(synthesis), {"records": UpstreamInput(stage=self.records_from)})
        self.records_from = "synthesize"

    def split(self) -> None:
        m = self.loaded.manifest
        seed = m.data.split.seed if m.data.split.seed is not None else m.seed
        params = {"test_fraction": m.data.split.test_fraction, "seed": seed}
        self.add("split", "split", params, {"records": UpstreamInput(stage=self.records_from)})
        self.train_from = "split"

    def dedup(self) -> None:
        """Exact and near-duplicate removal on the records of whichever data stage came last."""
        from opensem.curate.wiring import dedup_node

        node = dedup_node(self.loaded, self.relative, self.records_from)
        if node is not None:
            self.add("dedup", "dedup", node.params, node.inputs)
            self.nodes[-1] = self.nodes[-1].model_copy(update={"settings": node.settings})
            self.records_from = "dedup"

    def decontaminate(self) -> None:
        """Training records leaking the test split or golden set; train then reads train.jsonl from here."""
        from opensem.curate.wiring import decontaminate_node

        node = decontaminate_node(self.loaded, self.relative)
        if node is not None:
            self.add("decontaminate", "decontaminate", node.params, node.inputs)
            self.nodes[-1] = self.nodes[-1].model_copy(update={"settings": node.settings})
            self.train_from = "decontaminate"

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
            # Issue 5: these change the trained bytes, so they enter the lot.
            "beta": method.beta,
            "warmup_ratio": training.warmup_ratio,
            "lr_scheduler": training.lr_scheduler,
            "backend": compute.backend,
            "mixed_precision": compute.mixed_precision,
            "launcher": compute.launcher,
            "num_processes": compute.num_processes,
        }
        # How to run, not what to learn: never in the lot (resuming from a checkpoint gives the same bytes).
        settings = {
            "save_steps": training.save_steps,
            "report_to": training.report_to,
            "gradient_checkpointing": compute.gradient_checkpointing,
            "max_vram_gb": compute.max_vram_gb,
            "allow_cpu_fallback": compute.allow_cpu_fallback,
            "strict_hardware_check": method.strict_hardware_check,
        }
        inputs: dict[str, Input] = {"train": UpstreamInput(stage=self.train_from), **self.base_inputs}
        if compute.accelerate_config is not None:  # FSDP, DeepSpeed, machines: it shapes the run, so its bytes key the lot
            inputs["accelerate_config"] = SourceInput(path=self.relative(compute.accelerate_config))
        self.add("train", "train", params, inputs)
        self.nodes[-1] = self.nodes[-1].model_copy(update={"settings": get_stage("train").Settings.model_validate(settings).model_dump(mode="json")})  # type: ignore[attr-defined]

    def baseline(self) -> None:
        """The base model on the golden set and refusal prompts; nothing from the data, so data edits never rerun it."""
        from opensem.evaluation.wiring import eval_params, eval_settings, eval_sources

        sources = eval_sources(self.loaded, self.relative)
        if not sources:
            return
        self.add("baseline", "baseline", eval_params(self.loaded, self.hub_model), {**self.base_inputs, **sources})
        self.nodes[-1] = self.nodes[-1].model_copy(update={"settings": eval_settings(self.loaded)})

    def evaluate(self) -> None:
        from opensem.evaluation.wiring import eval_params, eval_settings, eval_sources

        params = {**eval_params(self.loaded, self.hub_model), "max_records": self.loaded.manifest.evaluation.max_records}
        inputs: dict[str, Input] = {"test": UpstreamInput(stage="split"), "adapter": UpstreamInput(stage="train"), **self.base_inputs}
        inputs.update(eval_sources(self.loaded, self.relative))
        if "baseline" in self.names:
            inputs["baseline"] = UpstreamInput(stage="baseline")
        self.add("evaluate", "evaluate", params, inputs)
        self.nodes[-1] = self.nodes[-1].model_copy(update={"settings": eval_settings(self.loaded)})

    def gate(self) -> None:
        """Quality gates on the evaluation report; publish waits for them."""
        from opensem.evaluation.wiring import gate_params

        if self.loaded.manifest.evaluation.gates:
            self.add("gate", "gate", gate_params(self.loaded), {"report": UpstreamInput(stage="evaluate")})

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.nodes]

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
        if "gate" in self.names:
            inputs["gate"] = UpstreamInput(stage="gate")  # nothing is published before the gates pass
        self.add("publish", "publish", params, inputs)
