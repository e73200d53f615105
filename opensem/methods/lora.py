"""LoRA supervised fine-tuning through peft and trl's SFTTrainer.

Records are tokenized by opensem.methods.data (the rendering evaluation uses too) and handed to
SFTTrainer already tokenized, so trl's own formatting never diverges from ours. Variants that
only change the adapter config (DoRA, rsLoRA) subclass this and override lora_config.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from opensem.errors import StageError
from opensem.methods import register_method
from opensem.methods.base import (
    ALL_LINEAR,
    SFT_SHAPES,
    Hyperparams,
    TrainOutcome,
    TrainRequest,
    hf_callback,
    load_causal_lm,
    load_tokenizer,
    metric_row,
    normalize_adapter_dir,
    quiet_libraries,
)
from opensem.methods.data import encode_records

CHECKPOINT_EVERY = 200  # steps; a killed run resumes from the last one in the work dir


def sft_config(hyper: Hyperparams, output_dir: Path) -> Any:
    """trl SFTConfig for a seeded, quiet, hub-free run; GPU-only speedups switch on with CUDA."""
    import torch
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=hyper.epochs if hyper.epochs is not None else 1.0,
        max_steps=hyper.max_steps if hyper.max_steps is not None else -1,
        learning_rate=hyper.learning_rate,
        per_device_train_batch_size=hyper.batch_size,
        gradient_accumulation_steps=hyper.grad_accum,
        logging_steps=hyper.logging_steps,
        logging_first_step=True,
        max_length=hyper.max_seq_length,
        packing=False,
        seed=hyper.seed,
        data_seed=hyper.seed,
        # trl defaults both to True; on CPU they only slow a run down (or fail without bf16 support).
        bf16=cuda and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=cuda,
        save_strategy="steps",
        save_steps=CHECKPOINT_EVERY,
        save_total_limit=1,
        report_to="none",
        disable_tqdm=True,
        push_to_hub=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
    )


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest checkpoint a previous, killed run of the same lot left behind."""
    if not output_dir.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir))


def linear_leaf_names(model: Any) -> list[str]:
    """What "all-linear" means for this model: the short names of its Linear layers but the output head.

    Short names (q_proj, ..., down_proj for Llama) rather than peft's per-layer paths keep the
    adapter config readable and portable to tools that merge adapters.
    """
    import torch

    head = model.get_output_embeddings()
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear) and module is not head}
    if not names:
        raise StageError("lora: the base model has no linear layers to adapt", hint="set target_modules explicitly")
    return sorted(names)


@register_method
class LoraMethod:
    """Low-rank adapters on the linear layers; the base weights stay frozen."""

    name = "lora"
    shapes = SFT_SHAPES

    def lora_config(self, hyper: Hyperparams, model: Any) -> Any:
        from peft import LoraConfig

        targets: list[str] | str
        if hyper.target_modules == ALL_LINEAR:
            targets = linear_leaf_names(model)
        elif isinstance(hyper.target_modules, str):
            targets = hyper.target_modules  # peft reads a single string as a regex over module paths
        else:
            targets = list(hyper.target_modules)
        return LoraConfig(
            r=hyper.rank,
            lora_alpha=hyper.lora_alpha,
            lora_dropout=hyper.dropout,
            target_modules=targets,
            bias="none",
            task_type="CAUSAL_LM",
        )

    def train(self, request: TrainRequest) -> TrainOutcome:
        """Train an adapter on request.records and save it (with the tokenizer) to request.out_dir."""
        from datasets import Dataset
        from transformers import PrinterCallback, set_seed
        from trl import SFTTrainer

        hyper = request.hyper
        checkpoints = request.work_dir / "checkpoints"
        with quiet_libraries():
            tokenizer = load_tokenizer(request.model_path, self.name)
            dataset = Dataset.from_dict({"input_ids": encode_records(request.records, tokenizer, hyper.max_seq_length)})
            model = load_causal_lm(request.model_path, self.name)
            set_seed(hyper.seed)  # before peft draws the adapter's initial weights
            trainer = SFTTrainer(
                model=model,
                args=sft_config(hyper, checkpoints),
                train_dataset=dataset,
                processing_class=tokenizer,
                peft_config=self.lora_config(hyper, model),
                callbacks=[hf_callback(request.hooks)],
            )
            trainer.remove_callback(PrinterCallback)  # added by disable_tqdm; it prints every log line
            started = time.perf_counter()
            output = trainer.train(resume_from_checkpoint=last_checkpoint(checkpoints))
            runtime = float(output.metrics.get("train_runtime", time.perf_counter() - started))
            request.out_dir.mkdir(parents=True, exist_ok=True)
            trainer.model.save_pretrained(str(request.out_dir), safe_serialization=True)
            tokenizer.save_pretrained(str(request.out_dir))
        # Checkpoints exist to resume a killed run; a finished one must not resume its own last step.
        shutil.rmtree(checkpoints, ignore_errors=True)
        normalize_adapter_dir(request.out_dir, request.base_model_name)
        # log_history, not the hooks, so a run resumed from a checkpoint still reports every step.
        log = [row for entry in trainer.state.log_history if (row := metric_row(int(entry.get("step", 0)), entry))]
        final_loss = log[-1]["loss"] if log else float(output.training_loss)
        return TrainOutcome(train_loss=float(final_loss), steps=int(trainer.state.global_step), runtime_s=runtime, log=log)

