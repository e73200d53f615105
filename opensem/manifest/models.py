"""The TrainingManifest: the single source of truth for what a manifest may say.

The JSON Schema in schemas/ is generated from these models (`opensem schema`), and a test keeps
the checked-in copy in sync. Defaults live here and nowhere else.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opensem.manifest.curation import CurationConfig
from opensem.manifest.evaluation import JudgeConfig, QualityGate
from opensem.manifest.synthesis import ChunkingConfig, SynthesisConfig

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# A tag may carry `{lot}`, replaced by the first 12 characters of the publish stage's lot.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]*(\{lot\}[A-Za-z0-9._+-]*)?$"

TrainingMethod = Literal["lora", "sft", "dora", "qlora", "dpo", "orpo", "kto"]
TrainingBackend = Literal["auto", "hf", "unsloth"]
MixedPrecision = Literal["auto", "no", "bf16", "fp16"]
Launcher = Literal["none", "accelerate"]
LrScheduler = Literal["linear", "cosine", "constant", "constant_with_warmup"]
ReportTo = Literal["none", "wandb", "tensorboard"]
DatasetFormat = Literal["auto", "text", "alpaca", "sharegpt", "messages", "dpo", "kto"]


class Section(BaseModel):
    """A manifest section: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class TinyModelSpec(Section):
    """A tiny randomly initialized Llama with a locally trained tokenizer, built as a stage."""

    hidden_size: int = Field(64, gt=0, description="Width of the model.")
    num_layers: int = Field(2, gt=0, le=32, description="Transformer blocks.")
    num_heads: int = Field(4, gt=0, description="Attention heads; must divide hidden_size.")
    vocab_size: int = Field(2000, ge=300, le=65536, description="BPE vocabulary size.")
    seed: int = Field(0, description="Seed of the random initialization.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "TinyModelSpec":
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})")
        return self


class TinyBaseModel(Section):
    tiny: TinyModelSpec = Field(description="Build a tiny local model instead of naming one.")


class DataSource(Section):
    path: str = Field(description="File, directory or glob (data/**/*.md) relative to the project root, or an fsspec URL (s3://bucket/docs/).")
    format: DatasetFormat = Field("auto", description="Dataset format of .jsonl/.json files; auto detects it.")


class SplitConfig(Section):
    test_fraction: float = Field(0.1, gt=0, lt=1, description="Share of records held out for evaluation.")
    seed: int | None = Field(None, description="Seed of the split hash; defaults to the manifest seed.")


class DataConfig(Section):
    sources: list[DataSource] | None = Field(
        None, min_length=1, description="Where the data is; defaults to data/<job_id>/raw/ (every file in it)."
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="Deterministic split by a hash of each record id.")
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig, description="How documents are cut into chunks (characters).")


class MethodConfig(Section):
    type: TrainingMethod = Field("lora", description="Training method.")
    rank: int = Field(16, gt=0, le=1024, description="Adapter rank (r).")
    alpha: int | None = Field(None, gt=0, description="Adapter scaling alpha; defaults to 2 x rank.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Adapter dropout.")
    target_modules: Union[list[str], Literal["all-linear"]] = Field(
        "all-linear", description="Modules to adapt; all-linear means q, k, v, o, gate, up and down projections."
    )
    strict_hardware_check: bool = Field(True, description="Fail before training when the hardware cannot run it; false: warn and try.")
    beta: float | None = Field(None, gt=0, description="Preference strength of dpo, orpo and kto (trl's beta); defaults to 0.1.")


class TrainingConfig(Section):
    epochs: float | None = Field(None, gt=0, description="Passes over the training data (default 1).")
    max_steps: int | None = Field(None, gt=0, description="Optimizer steps; overrides epochs when both are set.")
    learning_rate: float = Field(2e-4, gt=0, lt=1, description="Peak learning rate.")
    max_seq_length: int = Field(512, gt=0, description="Longer records are truncated.")
    logging_steps: int = Field(10, gt=0, description="Steps between loss/learning-rate log rows.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of the steps spent warming the learning rate up.")
    lr_scheduler: LrScheduler = Field("linear", description="Learning-rate schedule after warmup.")
    save_steps: int = Field(200, gt=0, description="Checkpoint every N steps; a killed build resumes from the last one. Not part of the lot.")
    report_to: ReportTo = Field("none", description="Also log metrics to wandb or tensorboard. Not part of the lot.")


class ComputeConfig(Section):
    batch_size: int = Field(4, gt=0, description="Records per device per step.")
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    backend: TrainingBackend = Field("auto", description="auto: unsloth when CUDA is present and unsloth imports, else hf (transformers + peft + trl).")
    mixed_precision: MixedPrecision = Field("auto", description="auto: bf16 where the GPU supports it, else fp16; none on a CPU.")
    gradient_checkpointing: Union[bool, Literal["auto"]] = Field(
        False, description="Trade compute for memory; auto: only when the memory estimate needs it. Not part of the lot."
    )
    max_vram_gb: float | None = Field(
        None, gt=0, description="VRAM cap on consumer cards (default: the card's memory less 2 GB, 22 on a 24 GB card); datacenter cards use all."
    )
    allow_cpu_fallback: bool = Field(False, description="Without CUDA, train qlora as plain LoRA on the CPU instead of failing.")
    launcher: Launcher = Field("none", description="accelerate: run training through `accelerate launch` (DDP, or FSDP/multi-node by accelerate_config).")
    num_processes: int | None = Field(None, gt=0, description="Processes for the accelerate launcher; defaults to one per GPU.")
    accelerate_config: str | None = Field(None, description="An accelerate config file (FSDP, DeepSpeed, several machines), relative to the project root.")


class EvaluationConfig(Section):
    golden: str | None = Field(
        None, description="Golden set (jsonl of question/answer, or a folder of them); defaults to data/<job_id>/golden/ when it exists."
    )
    batch_size: int = Field(8, gt=0, description="Records per evaluation batch.")
    max_records: int | None = Field(None, gt=0, description="Evaluate at most this many test records.")
    max_new_tokens: int = Field(64, gt=0, le=8192, description="Most tokens generated per answer.")
    temperature: float = Field(0.0, ge=0, le=2, description="0: greedy decoding; above 0: sampling seeded by the manifest seed.")
    refusal_prompts: str | None = Field(
        None, description="Prompts a safe model refuses (.txt one per line, or jsonl of prompt), for safety.refusal_rate; defaults to data/<job_id>/refusals/ when it exists."
    )
    judge: JudgeConfig | None = Field(None, description="LLM judge scoring answers 1 to 5 against the reference; omit for no judge scores.")
    gates: list[QualityGate] = Field(default_factory=list, description="Quality gates; any failing one fails the build (exit 3) and blocks publishing.")


class PublishTarget(Section):
    registry: str = Field(description="fsspec URL or a path relative to the project root.")
    tag: str = Field(pattern=TAG_PATTERN, description="Immutable release tag; `{lot}` expands to the publish lot.")
    trigger_deployment: bool = Field(False, description="Recorded in the registry index for deployment hooks.")


class TrainingManifest(Section):
    """What to train, on what, how to check it and where to publish it."""

    model_config = ConfigDict(extra="forbid", title="TrainingManifest")

    job_id: str = Field(pattern=JOB_ID_PATTERN, description="Name of this expert; names its data and registry folder.")
    description: str | None = Field(None, description="Free text; never part of a lot number.")
    base_model: Union[str, TinyBaseModel] = Field(
        description="Hub id (org/name), a local directory starting with ./ or ../, or {tiny: {...}}."
    )
    seed: int = Field(42, description="Seed for splitting and training.")
    data: DataConfig = Field(default_factory=DataConfig, description="Data sources and the train/test split.")
    synthesis: SynthesisConfig | None = Field(None, description="Data Forge: a teacher turns document chunks into training records; omit to train on the data as it is.")
    curation: CurationConfig | None = Field(None, description="Curator: dedup and decontaminate stages, each present when its sub-section is; omit for neither.")
    method_config: MethodConfig = Field(default_factory=MethodConfig, description="Training method and adapter shape.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Optimizer schedule and sequence length.")
    compute: ComputeConfig = Field(default_factory=ComputeConfig, description="Batch shape, training backend and hardware.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="How the base and fine-tuned models are evaluated, judged and gated.")
    publish_target: PublishTarget | None = Field(None, description="Where finished adapters go; omit to skip publishing.")


def is_local_model_path(base_model: str) -> bool:
    """A base model string names a local directory exactly when it is written as a path."""
    return base_model.startswith(("./", "../", "/", "~"))
