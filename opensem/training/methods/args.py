"""The trl/transformers arguments of a run, from the manifest's training and compute sections.

Names the installed trl/transformers do not know are dropped, so the same code runs on unsloth's
older pins and on the newest releases.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opensem.errors import StageError
from opensem.training.methods.base import Runtime

if TYPE_CHECKING:
    from opensem.training.config import TrainParams


def make_args(
    config_class: type,
    params: TrainParams,
    runtime: Runtime,
    output_dir: Path,
    cuda: bool,
    checkpointing: bool,
    extra: dict[str, Any],
    validating: bool = False,
) -> Any:
    """A trl config for a seeded, quiet, hub-free run that checkpoints into output_dir.

    Names the installed trl/transformers do not know are dropped (warmup_ratio became a fractional
    warmup_steps in transformers 5), so the same code runs on unsloth's older pins and on the newest.
    """
    import torch

    training, compute = params.training, params.compute
    precision = compute.mixed_precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "no"
    fields = {f.name for f in dataclasses.fields(config_class)}
    values: dict[str, Any] = {
        "output_dir": str(output_dir),
        "num_train_epochs": training.epochs if training.epochs is not None else 1.0,
        "max_steps": training.max_steps if training.max_steps is not None else -1,
        "learning_rate": training.learning_rate,
        "lr_scheduler_type": training.lr_scheduler,
        "per_device_train_batch_size": compute.batch_size,
        "gradient_accumulation_steps": compute.grad_accum,
        "logging_steps": training.logging_steps,
        "logging_first_step": True,
        "max_length": training.max_seq_length,
        "seed": params.seed,
        "data_seed": params.seed,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "gradient_checkpointing": checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if checkpointing else None,
        "save_strategy": "steps",
        "save_steps": training.save_steps,
        "save_total_limit": 1,
        "report_to": ["wandb"] if training.report_to == "wandb" else "none",
        "run_name": runtime.run_name,
        "disable_tqdm": True,
        "push_to_hub": False,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": cuda,
        "use_cpu": not cuda,
        "ddp_find_unused_parameters": False,
        **extra,
    }
    if validating:  # evaluate every eval_steps, checkpoint at the same steps, end on the best one
        values.update(
            {
                "eval_strategy": "steps",
                "eval_steps": training.eval_steps,
                "save_steps": training.eval_steps,
                "per_device_eval_batch_size": compute.batch_size,
                "load_best_model_at_end": True,
                "metric_for_best_model": "eval_loss",
                "greater_is_better": False,
                "save_total_limit": 2,
            }
        )
    if "warmup_ratio" in fields:
        values["warmup_ratio"] = training.warmup_ratio
    else:
        values["warmup_steps"] = training.warmup_ratio  # below 1: a share of the total steps
    return config_class(**{key: value for key, value in values.items() if key in fields})


def stopping_callbacks(params: TrainParams, validating: bool) -> list[Any]:
    """Early stopping on the validation loss when the manifest asks for it."""
    if not validating or params.training.early_stopping_patience is None:
        return []
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(early_stopping_patience=params.training.early_stopping_patience)]


def tracking_callbacks(report_to: str, runtime: Runtime) -> list[Any]:
    """A TensorBoard writer into runtime.tracking_dir when the manifest asks for one (wandb goes by report_to)."""
    if report_to != "tensorboard":
        return []
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise StageError(
            "training.report_to tensorboard needs the tensorboard package",
            hint="pip install tensorboard",
        ) from exc
    from transformers.integrations import TensorBoardCallback

    if runtime.tracking_dir is None:
        raise StageError("training.report_to tensorboard: no directory for the event files")
    runtime.tracking_dir.mkdir(parents=True, exist_ok=True)
    return [TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(runtime.tracking_dir)))]
