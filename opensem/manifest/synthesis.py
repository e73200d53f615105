"""Manifest sections of the Data Forge: `synthesis` (the teacher) and `data.chunking`.

Part of the TrainingManifest models (imported by models.py); kept in a file of their own so the
main models file stays short. Defaults live here and nowhere else.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

SynthesisMode = Literal["instructions", "preferences", "refusals"]
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Placeholders each prompt template must contain; others among {chunk} {n} {source} {question} are optional.
REQUIRED_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "instructions": ("{chunk}",),
    "preferences": ("{chunk}",),
    "refusals": ("{chunk}",),
    "rejected": ("{question}",),
}


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (no "Value error, " prefix)."""
    return PydanticCustomError("forge_config", "{message}", {"message": message})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChunkingConfig(_Section):
    size: int = Field(2000, ge=100, le=1_000_000, description="Most characters per document chunk; cut on paragraphs, then sentences, then words.")
    overlap: int = Field(0, ge=0, description="Characters of a chunk's end repeated at the start of the next (whole sentences or words); below size / 2.")

    @model_validator(mode="after")
    def _overlap_below_half(self) -> "ChunkingConfig":
        if self.overlap * 2 >= self.size:
            raise _invalid(f"overlap ({self.overlap}) must be less than half of size ({self.size})")
        return self


class PromptTemplates(_Section):
    system: str | None = Field(None, description="System message of every teacher request; a built-in one when unset.")
    instructions: str | None = Field(None, description="Prompt of mode instructions; placeholders {chunk}, {n}, {source}.")
    preferences: str | None = Field(None, description="Prompt of mode preferences; placeholders {chunk}, {n}, {source}.")
    refusals: str | None = Field(None, description="Prompt of mode refusals; placeholders {chunk}, {n}, {source}.")
    rejected: str | None = Field(None, description="Prompt to rejected_model for a rejected answer; placeholder {question}.")

    @model_validator(mode="after")
    def _placeholders(self) -> "PromptTemplates":
        for name, needed in REQUIRED_PLACEHOLDERS.items():
            text = getattr(self, name)
            missing = [p for p in needed if text is not None and p not in text]
            if missing:
                raise _invalid(f"prompts.{name} must contain {', '.join(missing)}")
        return self


class BudgetConfig(_Section):
    max_requests: int | None = Field(None, gt=0, description="Most teacher requests one build may send (retries included); unset means no limit.")
    price_per_1k_input_tokens: float = Field(0.0, ge=0, description="Price of 1,000 prompt tokens, for the cost estimate.")
    price_per_1k_output_tokens: float = Field(0.0, ge=0, description="Price of 1,000 answer tokens, for the cost estimate.")
    max_cost: float | None = Field(None, ge=0, description="Stop before sending when the estimated cost (answers at max_tokens) is above this.")


class SynthesisConfig(_Section):
    provider: Literal["offline", "openai"] = Field("offline", description="offline: template generator from document structure (not a language model); openai: any OpenAI-compatible endpoint.")
    model: str | None = Field(None, description="Teacher model name; required for provider openai.")
    base_url: str | None = Field(None, description="Endpoint, e.g. http://localhost:8000/v1 (vLLM, Ollama, llama.cpp); unset means api.openai.com.")
    api_key_env: str | None = Field("OPENAI_API_KEY", pattern=ENV_NAME, description="Name of the environment variable holding the API key (never the key); null for servers without auth.")
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature of the teacher.")
    max_tokens: int = Field(1024, gt=0, description="Most tokens per teacher answer.")
    concurrency: int = Field(8, gt=0, le=256, description="Requests in flight at once.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for one answer before retrying.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries per request on 429, 5xx and timeouts (exponential backoff), and re-asks per invalid answer.")
    json_mode: bool = Field(False, description="Send response_format json_object (for servers that support it).")
    mode: SynthesisMode = Field("instructions", description="instructions: question/answer pairs (SFT); preferences: prompt/chosen/rejected (DPO, ORPO); refusals: safety triplets.")
    pairs_per_chunk: int = Field(3, gt=0, le=50, description="Records asked for per document chunk.")
    prompts: PromptTemplates = Field(default_factory=PromptTemplates, description="Prompt template overrides; built-in defaults otherwise.")
    rejected_model: str | None = Field(None, description="Mode preferences: a second, weaker model answers for `rejected`; unset means the teacher writes a flawed answer.")
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="Limits checked before any request is sent.")

    @model_validator(mode="before")
    @classmethod
    def _no_keys_in_manifests(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in ("api_key", "key", "token")):
            raise _invalid("an API key never goes in the manifest: put it in an environment variable and name that variable in api_key_env")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "SynthesisConfig":
        if self.provider == "openai" and not self.model:
            raise _invalid("provider openai needs `model` (the teacher model's name)")
        if self.rejected_model is not None and self.mode != "preferences":
            raise _invalid(f"rejected_model applies to mode preferences only (mode is {self.mode})")
        if self.base_url is not None and not re.match(r"^https?://", self.base_url):
            raise _invalid(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.base_url is not None and "@" in self.base_url.split("/")[2]:
            raise _invalid("base_url must not carry credentials (they would be written to the lock): use api_key_env")
        return self
