"""The evaluation settings baseline and evaluate share, so both run exactly the same evaluation."""

from __future__ import annotations

from pydantic import Field

from opensem.evaluation.generation import GenerationSettings
from opensem.evaluation.judge import JudgeParams
from opensem.stages.base import StageParams


class EvalParams(StageParams):
    max_seq_length: int = Field(512, gt=1, description="prompts keep their last, scored sequences their first tokens")
    batch_size: int = Field(8, gt=0)
    max_new_tokens: int = Field(64, gt=0)
    temperature: float = Field(0.0, ge=0, le=2, description="0: greedy decoding")
    seed: int = 42
    base_model: str | None = Field(None, description="hub id or path; used only without a 'base' input")
    judge: JudgeParams | None = None

    def generation(self) -> GenerationSettings:
        return GenerationSettings(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            seed=self.seed,
            batch_size=self.batch_size,
            max_seq_length=self.max_seq_length,
        )
