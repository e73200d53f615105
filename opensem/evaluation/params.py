"""The params baseline and evaluate share, so both run exactly the same evaluation.

They are views of the manifest's sections (the very fields, picked): the evaluation settings
that change answers or scores, and training.max_seq_length, which the scored sequences share with
training. Paths (golden set, refusal prompts) are input slots, and gates belong to the gate stage,
so neither enters these lots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from pydantic import Field

from opensem.data.persona import persona_field
from opensem.evaluation.config import EvaluationConfig
from opensem.settings.fields import StageParams, pick, unset_keeps_lots
from opensem.training.config import TrainingConfig
from opensem.training.generation import GenerationSettings
from opensem.training.provider import ProviderTuning

if TYPE_CHECKING:  # a view of some of its fields, with their types
    EvalSettings: TypeAlias = EvaluationConfig
else:
    EvalSettings = pick(
        EvaluationConfig,
        "batch_size",
        "max_new_tokens",
        "temperature",
        "judge",
        name="EvalSettings",
    )
if TYPE_CHECKING:  # a view of some of its fields, with their types
    EvaluateSettings: TypeAlias = EvaluationConfig
else:
    EvaluateSettings = pick(
        EvaluationConfig,
        "batch_size",
        "max_new_tokens",
        "temperature",
        "judge",
        "max_records",
        name="EvaluateSettings",
    )
if TYPE_CHECKING:  # a view of some of its fields, with their types
    SequenceSettings: TypeAlias = TrainingConfig
else:
    SequenceSettings = pick(TrainingConfig, "max_seq_length", name="SequenceSettings")
if TYPE_CHECKING:  # a view of some of its fields, with their types
    ProviderEndpoint: TypeAlias = ProviderTuning
else:
    ProviderEndpoint = pick(ProviderTuning, "base_url", "api_key_env", name="ProviderEndpoint")


class EvalParams(StageParams):
    evaluation: EvalSettings = Field(default_factory=EvalSettings)
    training: SequenceSettings = Field(default_factory=SequenceSettings)
    seed: int  # the manifest's seed when sampling; 0 for greedy decoding, which it cannot change
    base_model: str | None = None  # a hub id or path, used only without a 'base' input
    persona: str | None = persona_field()
    provider: ProviderEndpoint | None = unset_keeps_lots(
        description="Models answer through this provider (compute.backend openai), not locally."
    )

    def generation(self) -> GenerationSettings:
        """The sampling settings evaluation answers with."""
        e = self.evaluation
        return GenerationSettings(
            max_new_tokens=e.max_new_tokens,
            temperature=e.temperature,
            seed=self.seed,
            batch_size=e.batch_size,
            max_seq_length=self.training.max_seq_length,
        )


class EvaluateParams(EvalParams):
    evaluation: EvaluateSettings = Field(default_factory=EvaluateSettings)
