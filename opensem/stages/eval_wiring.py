"""How the evaluation stages find their inputs and params in the manifest (baseline, evaluate,
gate, and decontaminate for the golden set). Pure: reads the manifest and the project layout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opensem.core.graph import Input, SourceInput
from opensem.training.provider import ProviderTuning

if TYPE_CHECKING:
    from opensem.stages.wiring import Wiring

EVALUATION = "evaluation"


def golden_input(wiring: Wiring) -> SourceInput | None:
    """The golden set as written (evaluation.golden), or data/<job_id>/golden/ when it exists."""
    return _conventional(wiring, "golden", "golden")


def refusals_input(wiring: Wiring) -> SourceInput | None:
    """The refusal prompts as written (evaluation.refusal_prompts), or data/<job_id>/refusals/ when it exists."""
    return _conventional(wiring, "refusal_prompts", "refusals")


def _conventional(wiring: Wiring, key: str, folder: str) -> SourceInput | None:
    written = getattr(wiring.section(EVALUATION), key)
    if written is not None:
        return wiring.source(written, (EVALUATION, key))
    conventional = f"data/{wiring.manifest.job_id}/{folder}"
    return SourceInput(path=conventional) if wiring.exists(conventional) else None


def eval_sources(wiring: Wiring) -> dict[str, Input]:
    """The golden sets (this manifest's as `golden`, each one a merge inherits as `golden:<job_id>`)
    and the refusal prompts, as input slots (those the graph has); a local judge's model folder too."""
    found = {
        "golden": golden_input(wiring),
        **wiring.collection("golden"),
        "refusals": refusals_input(wiring),
    }
    judge = wiring.section(EVALUATION).judge
    # A local judge's folder keys the lots of what it scores
    if judge is not None and judge.provider == "local":
        found.update(
            {
                f"judge_{slot}": value
                for slot, value in wiring.model_inputs(
                    judge.model, (EVALUATION, "judge", "model")
                ).items()
            }
        )
    return {slot: value for slot, value in found.items() if value is not None}


def eval_params(wiring: Wiring, params: type[Any]) -> Any:
    """A baseline/evaluate Params from the manifest: its `evaluation` view of the evaluation
    section, training.max_seq_length, and the seed, which only matters (and only enters) when sampling."""
    evaluation = wiring.section(EVALUATION)
    fields = params.model_fields["evaluation"].annotation.model_fields
    view = {name: getattr(evaluation, name) for name in fields}
    seed = wiring.manifest.seed if evaluation.temperature > 0 else 0
    values = {
        "evaluation": view,
        "training": {"max_seq_length": wiring.manifest.training.max_seq_length},
        "seed": seed,
        "base_model": wiring.hub_model,
        "persona": wiring.persona(),
    }
    if wiring.manifest.compute.backend == "openai":  # both models answer through the provider
        provider = wiring.manifest.compute.provider or ProviderTuning()
        values["provider"] = {"base_url": provider.base_url, "api_key_env": provider.api_key_env}
    return wiring.params(params, values)
