"""From the manifest to the params, inputs and run settings of baseline, evaluate and gate.

GraphBuilder (opensem.stages.wiring) calls these, so the graph module keeps one short method per stage.
Pure: reads the manifest and whether conventional folders exist, nothing else.
"""

from __future__ import annotations

from typing import Any, Callable

from opensem.errors import Location, ManifestError, Problem
from opensem.build.graph import Input, SourceInput
from opensem.manifest.loader import LoadedManifest
from opensem.evaluation.metrics import CATALOGUE


def eval_sources(loaded: LoadedManifest, relative: Callable[[str], str]) -> dict[str, Input]:
    """The golden set and refusal prompts as source inputs (when the manifest has them)."""
    found: dict[str, Input] = {}
    golden, refusals = loaded.golden(), loaded.refusal_prompts()
    if golden is not None:
        found["golden"] = SourceInput(path=relative(golden))
    if refusals is not None:
        found["refusals"] = SourceInput(path=relative(refusals))
    return found


def eval_params(loaded: LoadedManifest, hub_model: str | None) -> dict[str, Any]:
    """Settings baseline and evaluate share. The seed only matters, and only enters, when sampling."""
    from opensem.evaluation.judge import DEFAULT_RUBRIC

    m = loaded.manifest
    e = m.evaluation
    judge = None
    if e.judge is not None:
        judge = {
            "provider": e.judge.provider,
            "model": e.judge.model or "offline-heuristic",
            "base_url": e.judge.base_url,
            "rubric": e.judge.rubric or DEFAULT_RUBRIC,
            "temperature": e.judge.temperature,
            "max_tokens": e.judge.max_tokens,
            "max_retries": e.judge.max_retries,
        }
    return {
        "max_seq_length": m.training.max_seq_length,
        "batch_size": e.batch_size,
        "max_new_tokens": e.max_new_tokens,
        "temperature": e.temperature,
        "seed": m.seed if e.temperature > 0 else 0,
        "base_model": hub_model,
        "judge": judge,
    }


def eval_settings(loaded: LoadedManifest) -> dict[str, Any]:
    """How to reach the judge: run settings, never part of a lot."""
    judge = loaded.manifest.evaluation.judge
    if judge is None:
        return {}
    return {"judge": {"api_key_env": judge.api_key_env, "concurrency": judge.concurrency, "timeout_s": judge.timeout_s}}


def gate_params(loaded: LoadedManifest) -> dict[str, Any]:
    """The gates as stage params; a gate on a metric this manifest cannot measure is a manifest error."""
    e = loaded.manifest.evaluation
    available = {"golden": loaded.golden() is not None, "judge": e.judge is not None, "refusals": loaded.refusal_prompts() is not None}
    missing_hint = {
        "golden": f"add a golden set (evaluation.golden, or data/{loaded.manifest.job_id}/golden/)",
        "judge": "configure evaluation.judge",
        "refusals": f"add refusal prompts (evaluation.refusal_prompts, or data/{loaded.manifest.job_id}/refusals/)",
    }
    problems: list[Problem] = []
    for index, gate in enumerate(e.gates):
        for need in CATALOGUE[gate.metric].needs:
            if not available[need]:
                key = ("evaluation", "gates", index, "metric")
                where = Location(str(loaded.path), loaded.line_of(key), f"evaluation.gates[{index}].metric")
                what = {"golden": "golden set", "judge": "judge", "refusals": "refusal prompts"}[need]
                problems.append(Problem(f"{gate.metric} cannot be measured: this manifest has no {what}", where, missing_hint[need]))
    if problems:
        raise ManifestError(problems)
    return {"gates": [gate.model_dump() for gate in e.gates]}
