"""The TrainingManifest: its own keys (which expert, from which base model), and every section the
stage kinds declare, assembled in pipeline order (opensem.settings.sections).

The JSON Schema in schemas/ and the README reference are generated from the assembled model
(`opensem schema`), and a test keeps the checked-in copies in sync. Defaults live in the fields.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opensem.data.persona import Persona
from opensem.routing.profile import ExpertProfile
from opensem.settings.fields import Section
from opensem.settings.names import JOB_ID_PATTERN
from opensem.settings.sections import Group, assemble
from opensem.training.gguf import GgufSource
from opensem.training.tiny import TinyModelSpec

# Keys that only hold sections declared by several stages; their models are assembled.
GROUPS: dict[str, Group] = {
    "data": Group("DataConfig", "Data sources and the train/test split."),
    "curation": Group(
        "CurationConfig",
        "Curator: dedup and decontaminate stages, each present when its sub-section is; omit for neither.",
    ),
}


class TinyBaseModel(Section):
    tiny: TinyModelSpec = Field(description="Build a tiny local model instead of naming one.")


class GgufBaseModel(Section):
    gguf: GgufSource = Field(
        description="Convert a GGUF file (llama.cpp, Ollama, LM Studio) into a plain model folder once, and adapt that."
    )


class CacheConfig(Section):
    """A stage cache shared between machines; OPENSEM_CACHE and OPENSEM_CACHE_MODE override it."""

    url: str = Field(
        description="Any fsspec URL: s3://bucket/prefix, a folder (relative to the project root), ..."
    )
    mode: Literal["read", "read-write"] = Field(
        "read",
        description=(
            "read: take what others built (developer machines); read-write: also upload what this "
            "build makes (CI)."
        ),
    )


class ManifestCore(Section):
    """What to train, on what, how to check it and where to publish it."""

    model_config = ConfigDict(extra="forbid", title="TrainingManifest")

    job_id: str = Field(
        pattern=JOB_ID_PATTERN,
        description="Name of this expert; names its data and registry folder.",
    )
    description: str | None = Field(None, description="Free text; never part of a lot number.")
    base_model: str | TinyBaseModel | GgufBaseModel = Field(
        description=(
            "Hub id (org/name), a local directory or .gguf file starting with ./ or ../, {gguf: "
            "{...}} for a GGUF file in a package, or {tiny: {...}}."
        )
    )
    seed: int = Field(42, description="Seed for splitting and training.")
    expert: ExpertProfile | None = Field(
        None,
        description="How the router recognises this expert's queries (`opensem expert add`); never part of a lot.",
    )
    persona: Persona | None = Field(
        None,
        description=(
            "A system message (style guide) before every training example, evaluation question and "
            "served chat."
        ),
    )
    cache: CacheConfig | None = Field(
        None,
        description=(
            "A stage cache shared between machines: each stage's lot is looked up there before it "
            "runs; never part of a lot. Unset: the project's [tool.opensem] cache."
        ),
    )
    executor: Literal["local", "ray"] | None = Field(
        None,
        description=(
            "Where stages run: local (this process) or ray (tasks on the Ray cluster at "
            "RAY_ADDRESS, or a new local one; needs a read-write cache, which connects the "
            "machines). Unset: the project's [tool.opensem] executor, else local; `opensem build "
            "--executor` overrides both."
        ),
    )


@lru_cache(maxsize=1)
def manifest_model() -> type[BaseModel]:
    """The TrainingManifest model: the core keys and every stage kind's sections."""
    from opensem.stages import STAGES

    sections = [declared for kind in STAGES.all() for declared in kind.sections]
    return assemble(ManifestCore, sections, GROUPS, "TrainingManifest")
