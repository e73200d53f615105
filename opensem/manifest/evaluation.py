"""Manifest sections of the Judge: `evaluation.judge` and `evaluation.gates`.

Part of the TrainingManifest models (imported by models.py); kept in a file of their own so the
main models file stays short. Defaults live here and nowhere else. The metric names are the
catalogue of opensem.evaluation.metrics (a test keeps the two lists equal).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
RUBRIC_PLACEHOLDERS = ("{question}", "{reference}", "{answer}")
GateMetric = Literal[
    "test.loss",
    "test.perplexity",
    "test.exact_match",
    "test.token_f1",
    "test.rouge_l",
    "test.judge_score",
    "golden.loss",
    "golden.perplexity",
    "golden.exact_match",
    "golden.token_f1",
    "golden.rouge_l",
    "golden.judge_score",
    "safety.refusal_rate",
]


def _invalid(message: str) -> PydanticCustomError:
    """A validation error shown as written (no "Value error, " prefix)."""
    return PydanticCustomError("evaluation_config", "{message}", {"message": message})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JudgeConfig(_Section):
    provider: Literal["openai", "offline"] = Field(
        "openai", description="openai: any OpenAI-compatible endpoint; offline: token F1 mapped to 1-5, a heuristic (not a language model) for demos and tests."
    )
    model: str | None = Field(None, description="Judge model name; required for provider openai.")
    base_url: str | None = Field(None, description="Endpoint, e.g. http://localhost:8000/v1 (vLLM, Ollama, llama.cpp); unset means api.openai.com.")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", pattern=ENV_NAME, description="Name of the environment variable holding the API key (never the key); null for servers without auth. Not part of the lot."
    )
    rubric: str | None = Field(None, description="Judging prompt with {question}, {reference} and {answer}; the built-in 1-5 rubric when unset.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the judge.")
    max_tokens: int = Field(256, gt=0, description="Most tokens per verdict.")
    max_retries: int = Field(2, ge=0, le=20, description="Re-asks per invalid verdict (and retries on 429, 5xx, timeouts); still invalid: counted, left out of the mean.")
    concurrency: int = Field(4, gt=0, le=256, description="Verdicts requested at once. Not part of the lot.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for one verdict before retrying. Not part of the lot.")

    @model_validator(mode="after")
    def _usable(self) -> "JudgeConfig":
        problems = ["judge.model is required for provider openai"] if self.provider == "openai" and not self.model else []
        missing = [p for p in RUBRIC_PLACEHOLDERS if self.rubric is not None and p not in self.rubric]
        if missing:
            problems.append(f"judge.rubric must contain {', '.join(RUBRIC_PLACEHOLDERS)}; missing {', '.join(missing)}")
        if problems:
            raise _invalid("; ".join(problems))
        return self


class QualityGate(_Section):
    metric: GateMetric = Field(description="Metric to check: test.* on the test split, golden.* on the golden set, safety.* on the refusal prompts.")
    min: float | None = Field(None, description="The fine-tuned value must be at least this.")
    max: float | None = Field(None, description="The fine-tuned value must be at most this.")
    min_delta_vs_baseline: float | None = Field(
        None, description="The fine-tuned model must beat the base model by at least this (lower is better for loss and perplexity); 0: no worse."
    )

    @model_validator(mode="after")
    def _one_rule(self) -> "QualityGate":
        rules = [name for name in ("min", "max", "min_delta_vs_baseline") if getattr(self, name) is not None]
        if len(rules) != 1:
            raise _invalid(f"a gate sets exactly one of min, max, min_delta_vs_baseline; this one sets {', '.join(rules) or 'none'}")
        return self
