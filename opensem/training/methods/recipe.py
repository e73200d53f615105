"""The one training flow every method shares; a method says which records, which trainer, which adapter.

backend -> model (+ adapter) -> dataset -> trl trainer -> resume from the newest complete checkpoint
-> train -> save the artifact -> free the memory. Everything that differs between methods is a class
attribute or one of three small overrides, so the checkpoint, metrics and memory rules hold for all.
"""

from __future__ import annotations

import gc
import os
import shutil
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from opensem.errors import HardwareIncompatibleError, StageError, UsageError
from opensem.training.backends import AdapterSpec, LoadSpec, resolve_backend
from opensem.training.methods.args import make_args, stopping_callbacks, tracking_callbacks
from opensem.training.methods.base import (
    TrainOutcome,
    TrainRequest,
    hf_callback,
    metric_row,
    normalize_adapter_dir,
    quiet_libraries,
)
from opensem.training.methods.checkpoints import checkpoint_step, last_checkpoint
from opensem.training.methods.options import ALL_LINEAR, AdapterOptions, MethodOptions

if TYPE_CHECKING:
    from opensem.training.config import TrainParams


class TrainerMethod(ABC):
    """Base of the trl-based methods; subclasses register themselves and fill in the abstract parts."""

    name: ClassVar[str]
    Options: ClassVar[type[MethodOptions]]
    shapes: ClassVar[tuple[tuple[str, ...], ...]]
    artifact: ClassVar[str] = "adapter"
    full: ClassVar[bool] = False
    quantized: ClassVar[bool] = False
    paired: ClassVar[bool] = False
    vram_floor_gb: ClassVar[float | None] = None
    use_dora: ClassVar[bool] = False
    min_batch_size: ClassVar[int] = 1
    # The records it trains on, as the tokenize stage stores their token ids: sft (one sequence per record),
    # preference (prompt, chosen, rejected) or feedback (prompt, completion, label).
    token_shape: ClassVar[str] = "sft"
    metric_extras: ClassVar[
        tuple[str, ...]
    ] = ()  # trainer log values kept in metrics.jsonl besides loss, lr, grad norm
    # Tokens one example puts through the model, as {tokenized column: times it is forwarded}.
    token_columns: ClassVar[dict[str, int]] = {"input_ids": 1}

    @abstractmethod
    def dataset(self, records: list[dict[str, Any]], tokenizer: Any, params: TrainParams) -> Any:
        """The datasets.Dataset the trainer takes, built from normalized records."""

    @abstractmethod
    def config_class(self) -> type:
        """trl's config class for this method (SFTConfig, DPOConfig, ...)."""

    @abstractmethod
    def make_trainer(
        self, model: Any, tokenizer: Any, dataset: Any, args: Any, peft_config: Any
    ) -> Any:
        """The trl trainer for the prepared model, config, and the adapter config it should apply (or None)."""

    def config_extra(self, params: TrainParams) -> dict[str, Any]:
        """Method-specific config values (beta, packing ...); unknown names are dropped per trl version."""
        return {}

    def adapter_spec(self, options: MethodOptions, model: Any) -> AdapterSpec | None:
        """The adapter to add, or None to train every weight."""
        if self.full or not isinstance(options, AdapterOptions):
            return None
        targets: tuple[str, ...] | str
        if options.target_modules == ALL_LINEAR:
            targets = tuple(linear_leaf_names(model))
        else:
            targets = tuple(options.target_modules)
        layers = None
        if options.last_layers is not None:
            blocks = int(model.config.num_hidden_layers)
            layers = tuple(range(max(0, blocks - options.last_layers), blocks))
        return AdapterSpec(
            options.rank, options.lora_alpha, options.dropout, targets, self.use_dora, layers=layers
        )

    def train(self, request: TrainRequest) -> TrainOutcome:
        """Train on request.records; the artifact (adapter or model, with tokenizer) goes to request.out_dir."""
        import datasets  # noqa: F401  (imported before quiet_libraries, which then silences its progress bars too)
        import torch
        from transformers import PrinterCallback, set_seed

        params, runtime = request.params, request.runtime
        if params.compute.batch_size < self.min_batch_size:
            raise UsageError(
                f"{self.name} needs compute.batch_size of {self.min_batch_size} or more, got "
                f"{params.compute.batch_size}",
                hint="raise compute.batch_size",
            )
        cuda = torch.cuda.is_available()
        if self.quantized and not cuda and not runtime.cpu_fallback:
            raise HardwareIncompatibleError(
                f"{self.name} needs a CUDA GPU for its 4-bit base model, and this machine has none",
                hint=(
                    "train on a GPU machine, use method lora, or set compute.allow_cpu_fallback: "
                    "true to train plain LoRA on the CPU"
                ),
            )
        if self.quantized and not cuda:
            request.log.warning(
                "%s without CUDA: 4-bit loading needs a GPU; training plain LoRA in float32 on the CPU",
                self.name,
            )
        backend = resolve_backend(params.compute.backend, cuda, request.log)
        spec = LoadSpec(
            request.model_path,
            params.training.max_seq_length,
            params.seed,
            cuda,
            self.quantized and cuda,
            self.full,
            runtime.gradient_checkpointing,
        )
        checkpoints = request.work_dir / "checkpoints"
        trainer: Any = None
        model: Any = None
        try:
            with quiet_libraries():
                if cuda and runtime.vram_cap_gb:
                    from opensem.training.hardware import apply_vram_cap

                    apply_vram_cap(runtime.vram_cap_gb)
                model, tokenizer = backend.load(spec, self.name)
                adapter = self.adapter_spec(params.method_config, model)
                peft_config = None
                set_seed(
                    params.seed
                )  # before the adapter's initial weights are drawn (here or in the trainer)
                if adapter is not None:
                    model, peft_config = backend.add_adapter(model, adapter, spec)
                dataset = self.dataset(request.records, tokenizer, params)
                validating = bool(request.eval_records) and params.training.eval_steps is not None
                args = make_args(
                    self.config_class(),
                    params,
                    runtime,
                    checkpoints,
                    cuda,
                    backend.trainer_checkpointing(spec),
                    self.config_extra(params),
                    validating,
                )
                extra = (
                    {"eval_dataset": self.dataset(request.eval_records or [], tokenizer, params)}
                    if validating
                    else {}
                )
                trainer = self.make_trainer(model, tokenizer, dataset, args, peft_config, **extra)
                trainer.remove_callback(
                    PrinterCallback
                )  # added by disable_tqdm; it prints every log line
                for callback in [
                    hf_callback(request.hooks),
                    *tracking_callbacks(params.training.report_to, runtime),
                    *stopping_callbacks(params, validating),
                ]:
                    trainer.add_callback(callback)
                resume = last_checkpoint(checkpoints)
                resumed_from = checkpoint_step(resume)
                if resume is not None:
                    request.log.info(
                        "resuming from checkpoint %s (step %d) of a killed run",
                        Path(resume).name,
                        resumed_from,
                    )
                    request.hooks.on_resume(resumed_from, resume)
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                started = time.perf_counter()
                output = trainer.train(resume_from_checkpoint=resume)
                runtime_s = float(
                    output.metrics.get("train_runtime", time.perf_counter() - started)
                )
                peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
                self.save(trainer, request)
            if trainer.is_world_process_zero():
                # Checkpoints exist to resume a killed run; a finished one must not resume its own last step.
                shutil.rmtree(checkpoints, ignore_errors=True)
            log = [
                row
                for entry in trainer.state.log_history
                if (row := metric_row(int(entry.get("step", 0)), entry, self.metric_extras))
            ]
            trained = [row for row in log if "loss" in row]
            final_loss = trained[-1]["loss"] if trained else float(output.training_loss)
            return TrainOutcome(
                train_loss=float(final_loss),
                steps=int(trainer.state.global_step),
                runtime_s=runtime_s,
                log=log,
                backend=backend.name,
                device="cuda" if cuda else "cpu",
                tokens=seen_tokens(trainer, self.token_columns, params, resumed_from),
                peak_memory_mb=None if peak is None else round(peak, 1),
                resumed_from=resumed_from,
                processes=int(trainer.args.world_size),
            )
        finally:
            del trainer, model
            release_memory()

    def save(self, trainer: Any, request: TrainRequest) -> None:
        """Write the artifact and tokenizer (rank 0 writes; every rank joins, as FSDP gathers weights)."""
        out = request.out_dir
        trainer.save_model(str(out))  # the tokenizer too: it is the trainer's processing_class
        if not trainer.is_world_process_zero():
            return
        (out / "training_args.bin").unlink(
            missing_ok=True
        )  # pickled arguments: machine paths, no use downstream
        shutil.rmtree(
            out / "ref", ignore_errors=True
        )  # trl's frozen copy of a pre-wrapped adapter, a reference only
        if self.artifact == "adapter":
            normalize_adapter_dir(out, request.base_model_name)
        else:
            (out / "README.md").unlink(missing_ok=True)


def linear_leaf_names(model: Any) -> list[str]:
    """What "all-linear" means for this model: the short names of its Linear layers but the output head.

    Short names (q_proj, ..., down_proj for Llama) rather than peft's per-layer paths keep the
    adapter config readable and portable to tools that merge adapters. 4-bit layers count too.
    """
    import torch

    head = model.get_output_embeddings()
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if module is not head
        and (
            isinstance(module, torch.nn.Linear)
            or type(module).__name__ in ("Linear4bit", "Linear8bitLt")
        )
    }
    if not names:
        raise StageError(
            "the base model has no linear layers to adapt",
            hint="set method_config.target_modules explicitly",
        )
    return sorted(names)


def seen_tokens(
    trainer: Any, columns: dict[str, int], params: TrainParams, resumed_from: int
) -> int:
    """Tokens (padding excluded) the optimizer steps of this run put through the model, all processes.

    Counted from the trainer's own tokenized dataset, so a preference pair counts its prompt once
    per sequence it is part of: the work the step did. A trl version that names its columns
    differently is counted over every *_ids column.
    """
    dataset = getattr(trainer, "train_dataset", None)
    if dataset is None or len(dataset) == 0:
        return 0
    if not set(columns) <= set(dataset.column_names):
        columns = {c: 1 for c in dataset.column_names if c.endswith("_ids")}
    import pyarrow.compute as pc

    # Lengths straight from the Arrow columns: iterating 100,000 rows in Python would take seconds.
    per_example = sum(
        times * int(pc.sum(pc.list_value_length(dataset.data.column(c))).as_py() or 0)
        for c, times in columns.items()
    ) / len(dataset)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    examples = (
        (trainer.state.global_step - resumed_from)
        * params.compute.batch_size
        * params.compute.grad_accum
        * world
    )
    return int(per_example * examples)


def release_memory() -> None:
    """Give GPU memory back after a run, so the next stage (evaluation) starts with a clean card.

    On a CPU, dropping the references frees the memory; a full collection would only cost time.
    """
    import torch

    if torch.cuda.is_available():
        gc.collect()  # trainer, model and optimizer sit in reference cycles
        torch.cuda.empty_cache()
