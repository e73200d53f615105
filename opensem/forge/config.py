"""The `synthesis` manifest section (Data Forge): what the teacher is asked, and how.

The section is the shared settings below merged with the chosen provider's own options (openai:
model, base_url, api_key_env, json_mode), a union tagged by `provider` (opensem.teachers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import Field, TypeAdapter, model_validator

from opensem.settings.fields import Section, invalid, run_setting
from opensem.teachers.base import provider_union

SynthesisMode = Literal["instructions", "preferences", "refusals"]
# Placeholders each prompt template must contain; others among {chunk} {n} {source} {question} are optional.
REQUIRED_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "instructions": ("{chunk}",),
    "preferences": ("{chunk}",),
    "refusals": ("{chunk}",),
    "rejected": ("{question}",),
}


class PromptTemplates(Section):
    system: str | None = Field(
        None, description="System message of every teacher request; a built-in one when unset."
    )
    instructions: str | None = Field(
        None, description="Prompt of mode instructions; placeholders {chunk}, {n}, {source}."
    )
    preferences: str | None = Field(
        None, description="Prompt of mode preferences; placeholders {chunk}, {n}, {source}."
    )
    refusals: str | None = Field(
        None, description="Prompt of mode refusals; placeholders {chunk}, {n}, {source}."
    )
    rejected: str | None = Field(
        None, description="Prompt to rejected_model for a rejected answer; placeholder {question}."
    )

    @model_validator(mode="after")
    def _placeholders(self) -> PromptTemplates:
        for name, needed in REQUIRED_PLACEHOLDERS.items():
            text = getattr(self, name)
            missing = [p for p in needed if text is not None and p not in text]
            if missing:
                raise invalid(f"prompts.{name} must contain {', '.join(missing)}")
        return self


class BudgetConfig(Section):
    max_requests: int | None = Field(
        None,
        gt=0,
        description="Most teacher requests one build may send (retries included); unset means no limit.",
    )
    price_per_1k_input_tokens: float = Field(
        0.0, ge=0, description="Price of 1,000 prompt tokens, for the cost estimate."
    )
    price_per_1k_output_tokens: float = Field(
        0.0, ge=0, description="Price of 1,000 answer tokens, for the cost estimate."
    )
    max_cost: float | None = Field(
        None,
        ge=0,
        description="Stop before sending when the estimated cost (answers at max_tokens) is above this.",
    )


class SynthesisSettings(Section):
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature of the teacher.")
    max_tokens: int = Field(1024, gt=0, description="Most tokens per teacher answer.")
    concurrency: int = run_setting(8, gt=0, le=256, description="Requests in flight at once.")
    timeout_s: float = run_setting(
        60.0, gt=0, description="Seconds to wait for one answer before retrying."
    )
    max_retries: int = Field(
        4,
        ge=0,
        le=20,
        description=(
            "Retries per request on 429, 5xx and timeouts (exponential backoff), and re-asks per "
            "invalid answer."
        ),
    )
    mode: SynthesisMode = Field(
        "instructions",
        description=(
            "instructions: question/answer pairs (SFT); preferences: prompt/chosen/rejected (DPO, "
            "ORPO); refusals: safety triplets."
        ),
    )
    pairs_per_chunk: int = Field(
        3, gt=0, le=50, description="Records asked for per document chunk."
    )
    prompts: PromptTemplates = Field(
        default_factory=PromptTemplates,
        description="Prompt template overrides; built-in defaults otherwise.",
    )
    rejected_model: str | None = Field(
        None,
        description=(
            "Mode preferences: a second, weaker model answers for `rejected`; unset means the "
            "teacher writes a flawed answer."
        ),
    )
    budget: BudgetConfig = Field(
        default_factory=BudgetConfig, description="Limits checked before any request is sent."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SynthesisSettings:
        if self.rejected_model is not None and self.mode != "preferences":
            raise invalid(f"rejected_model applies to mode preferences only (mode is {self.mode})")
        return self


if TYPE_CHECKING:  # a tagged union built at import
    SynthesisConfig: TypeAlias = Any
else:
    SynthesisConfig = provider_union(SynthesisSettings, default="offline")


def synthesis_config(**values: Any) -> Any:
    """A validated synthesis section from keyword values (for code and tests that build one)."""
    return TypeAdapter(SynthesisConfig).validate_python(values)
