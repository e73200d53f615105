"""Manifest sections of the Judge: `evaluation` (with `evaluation.judge`) and the gates' entries.

The judge section is the shared settings below merged with the chosen provider's options, a union
tagged by `provider` (opensem.teachers). Gate metrics are the catalogue's names, so adding a
metric to the catalogue makes it gateable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import Field, TypeAdapter, model_validator

from opensem.evaluation.metrics import CATALOGUE
from opensem.settings.fields import Section, invalid, run_setting
from opensem.teachers.base import provider_union

RUBRIC_PLACEHOLDERS = ("{question}", "{reference}", "{answer}")
if TYPE_CHECKING:  # the catalogue's names, as a Literal built at import
    GateMetric: TypeAlias = str
else:
    GateMetric = Literal[tuple(CATALOGUE)]
GATE_RULES = ("min", "max", "min_delta_vs_baseline")


class JudgeSettings(Section):
    rubric: str | None = Field(
        None,
        description="Judging prompt with {question}, {reference} and {answer}; the built-in 1-5 rubric when unset.",
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the judge.")
    max_tokens: int = Field(256, gt=0, description="Most tokens per verdict.")
    max_retries: int = Field(
        2,
        ge=0,
        le=20,
        description=(
            "Re-asks per invalid verdict (and retries on 429, 5xx, timeouts); still invalid: "
            "counted, left out of the mean."
        ),
    )
    concurrency: int = run_setting(4, gt=0, le=256, description="Verdicts requested at once.")
    timeout_s: float = run_setting(
        60.0, gt=0, description="Seconds to wait for one verdict before retrying."
    )

    @model_validator(mode="after")
    def _rubric_placeholders(self) -> JudgeSettings:
        missing = [
            p for p in RUBRIC_PLACEHOLDERS if self.rubric is not None and p not in self.rubric
        ]
        if missing:
            raise invalid(
                f"judge.rubric must contain {', '.join(RUBRIC_PLACEHOLDERS)}; missing {', '.join(missing)}"
            )
        return self


if TYPE_CHECKING:  # a tagged union built at import
    JudgeConfig: TypeAlias = Any
else:
    JudgeConfig = provider_union(JudgeSettings, default="openai")


def judge_config(**values: Any) -> Any:
    """A validated judge section from keyword values (for code and tests that build one)."""
    return TypeAdapter(JudgeConfig).validate_python(values)


class EvaluationConfig(Section):
    golden: str | None = Field(
        None,
        description=(
            "Golden set (jsonl of question/answer, or a folder of them); defaults to "
            "data/<job_id>/golden/ when it exists."
        ),
    )
    batch_size: int = Field(8, gt=0, description="Records per evaluation batch.")
    max_records: int | None = Field(
        None, gt=0, description="Evaluate at most this many test records."
    )
    max_new_tokens: int = Field(64, gt=0, le=8192, description="Most tokens generated per answer.")
    temperature: float = Field(
        0.0,
        ge=0,
        le=2,
        description="0: greedy decoding; above 0: sampling seeded by the manifest seed.",
    )
    refusal_prompts: str | None = Field(
        None,
        description=(
            "Prompts a safe model refuses (.txt one per line, or jsonl of prompt), for "
            "safety.refusal_rate; defaults to data/<job_id>/refusals/ when it exists."
        ),
    )
    judge: JudgeConfig | None = Field(
        None,
        description="LLM judge scoring answers 1 to 5 against the reference; omit for no judge scores.",
    )


class QualityGate(Section):
    metric: GateMetric = Field(
        description=(
            "Metric to check: test.* on the test split, golden.* on the golden set, safety.* on "
            "the refusal prompts."
        )
    )
    min: float | None = Field(None, description="The fine-tuned value must be at least this.")
    max: float | None = Field(None, description="The fine-tuned value must be at most this.")
    min_delta_vs_baseline: float | None = Field(
        None,
        description=(
            "The fine-tuned model must beat the base model by at least this (lower is better for "
            "loss and perplexity); 0: no worse."
        ),
    )

    @model_validator(mode="after")
    def _one_rule(self) -> QualityGate:
        rules = [name for name in GATE_RULES if getattr(self, name) is not None]
        if len(rules) != 1:
            raise invalid(
                "a gate sets exactly one of min, max, min_delta_vs_baseline; this one sets "
                f"{', '.join(rules) or 'none'}"
            )
        return self

    @property
    def rule(self) -> str:
        """Which rule the gate sets (min, max, min_improvement, ...)."""
        return next(name for name in GATE_RULES if getattr(self, name) is not None)

    @property
    def threshold(self) -> float:
        """The value the gate's rule compares against."""
        return float(getattr(self, self.rule))
