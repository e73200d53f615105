"""Manifest sections of the Training Floor: `training` and `compute`, and the train stage's params.

The train stage takes these sections as they are, with `method_config` (one method's own options,
opensem.training.methods) beside them: the lot is every field not marked run_setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from opensem.data.persona import persona_field
from opensem.settings.fields import Section, invalid, run_setting, unset_keeps_lots
from opensem.training.methods import MethodConfig, default_method_options
from opensem.training.provider import ProviderTuning

LrScheduler = Literal["linear", "cosine", "constant", "constant_with_warmup"]


class TrainingConfig(Section):
    epochs: float | None = Field(
        None, gt=0, description="Passes over the training data (default 1)."
    )
    max_steps: int | None = Field(
        None, gt=0, description="Optimizer steps; overrides epochs when both are set."
    )
    learning_rate: float = Field(2e-4, gt=0, lt=1, description="Peak learning rate.")
    max_seq_length: int = Field(512, gt=1, description="Longer records are truncated.")
    logging_steps: int = Field(10, gt=0, description="Steps between loss/learning-rate log rows.")
    warmup_ratio: float = Field(
        0.0, ge=0, lt=1, description="Share of the steps spent warming the learning rate up."
    )
    lr_scheduler: LrScheduler = Field("linear", description="Learning-rate schedule after warmup.")
    packing: bool = Field(
        False,
        description=(
            "Lay several records into each max_seq_length sequence (attention stays within each "
            "record): less padding."
        ),
    )
    loss_on: Literal["all", "assistant"] = Field(
        "all",
        description="Tokens the loss is taken on: all, or only the assistant's answers in chats.",
    )
    eval_steps: int | None = Field(
        None,
        gt=0,
        description=(
            "Measure the loss on a validation share of the train split every N steps (and keep the "
            "best checkpoint)."
        ),
    )
    early_stopping_patience: int | None = Field(
        None,
        gt=0,
        description="Stop after this many evaluations without a lower validation loss; needs eval_steps.",
    )
    validation_fraction: float = Field(
        0.1,
        gt=0,
        lt=0.5,
        description="Share of the train split held out as validation when eval_steps is set.",
    )

    @model_validator(mode="after")
    def _patience_needs_evaluations(self) -> TrainingConfig:
        if self.early_stopping_patience is not None and self.eval_steps is None:
            raise invalid(
                "early_stopping_patience needs eval_steps (how often the validation loss is measured)"
            )
        return self

    save_steps: int = run_setting(
        200, gt=0, description="Checkpoint every N steps; a killed build resumes from the last one."
    )
    report_to: Literal["none", "wandb", "tensorboard"] = run_setting(
        "none", description="Also log metrics to wandb or tensorboard."
    )


class ComputeConfig(Section):
    batch_size: int = Field(4, gt=0, description="Records per device per step.")
    grad_accum: int = Field(1, gt=0, description="Gradient accumulation steps.")
    backend: Literal["auto", "hf", "unsloth", "openai"] = Field(
        "auto",
        description=(
            "auto: unsloth when CUDA is present and unsloth imports, else hf (transformers + peft "
            "+ trl); openai: the provider's fine-tuning API."
        ),
    )
    provider: ProviderTuning | None = unset_keeps_lots(
        description="Provider fine-tuning settings (backend openai); the defaults when unset."
    )
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 where the GPU supports it, else fp16; none on a CPU."
    )
    gradient_checkpointing: bool | Literal["auto"] = run_setting(
        False, description="Trade compute for memory; auto: only when the memory estimate needs it."
    )
    max_vram_gb: float | None = run_setting(
        None,
        gt=0,
        description=(
            "VRAM cap on consumer cards (default: the card's memory less 2 GB, 22 on a 24 GB "
            "card); datacenter cards use all."
        ),
    )
    allow_cpu_fallback: bool = run_setting(
        False, description="Without CUDA, train qlora as plain LoRA on the CPU instead of failing."
    )
    launcher: Literal["none", "accelerate"] = Field(
        "none",
        description=(
            "accelerate: run training through `accelerate launch` (DDP, or FSDP/multi-node by "
            "accelerate_config)."
        ),
    )
    num_processes: int | None = Field(
        None, gt=0, description="Processes for the accelerate launcher; defaults to one per GPU."
    )
    accelerate_config: str | None = Field(
        None,
        description=(
            "An accelerate config file (FSDP, DeepSpeed, several machines), relative to the "
            "project root; the file's bytes key the lot, not its path."
        ),
    )

    def lot_exclusions(self) -> set[str]:
        """The accelerate config file is an input slot: its digest enters the lot, not its path."""
        return {"accelerate_config"}  # an input slot of the train stage: its digest enters the lot


class TrainParams(Section):
    """The train stage's params: the three manifest sections as they are (the stage declares them
    from these fields), the manifest's seed, and the base model when it is a hub id."""

    method_config: MethodConfig = Field(
        default_factory=default_method_options, description="Training method and its options."
    )
    training: TrainingConfig = Field(
        default_factory=TrainingConfig, description="Optimizer schedule and sequence length."
    )
    compute: ComputeConfig = Field(
        default_factory=ComputeConfig, description="Batch shape, training backend and hardware."
    )
    seed: int  # the manifest's seed
    base_model: str | None = None  # a hub id or path, used only without a 'base' input
    persona: str | None = persona_field()
