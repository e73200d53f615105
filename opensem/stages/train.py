"""Stage kind train: fine-tune a base model on the train split with a registered method.

Order matters: the data is checked against the method's record shapes, then the hardware
preflight judges the run against this machine's GPUs (or RAM), and only then does a model load.
Checkpoints go to the lot's work dir, so a killed build resumes there; out_dir receives only the
final artifacts: adapter/ (or model/ for full fine-tuning), metrics.jsonl and loss.png.

What enters the lot (Params) is what changes the trained bytes, the backend included. How the run
goes about it (checkpoint interval, trackers, gradient checkpointing, VRAM cap, the hardware
policy) arrives through ctx.settings: changing those never retrains anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from opensem.errors import DataError, Location
from opensem.training.loss_curve import plot_loss
from opensem.training.methods.base import ALL_LINEAR
from opensem.stages import register
from opensem.stages.base import Progress, StageContext, StageParams, StageResult

if TYPE_CHECKING:
    from opensem.training.hardware import HardwareReport
    from opensem.training.methods.base import Hyperparams, Method, TrainOutcome


def write_metrics(rows: list[dict[str, Any]], path: Path) -> None:
    """One compact JSON object per logged step, keys sorted so equal logs give equal bytes."""
    text = "".join(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")


@register
class Train:
    name = "train"
    version = "2"  # 2: full-model artifacts (sft), preference metrics, run settings, Pillow loss curve

    class Params(StageParams):
        method: str = "lora"
        rank: int = Field(16, gt=0)
        alpha: int | None = Field(None, gt=0, description="LoRA alpha; None means 2 * rank")
        dropout: float = Field(0.05, ge=0.0, lt=1.0)
        target_modules: list[str] | str = ALL_LINEAR
        beta: float | None = Field(None, gt=0, description="dpo, orpo and kto; None means 0.1")
        epochs: float | None = Field(None, gt=0)
        max_steps: int | None = Field(None, gt=0, description="wins over epochs; neither set means one epoch")
        learning_rate: float = Field(2e-4, gt=0)
        warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
        lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
        max_seq_length: int = Field(512, gt=1)
        logging_steps: int = Field(10, gt=0)
        batch_size: int = Field(4, gt=0)
        grad_accum: int = Field(1, gt=0)
        seed: int = 42
        base_model: str | None = Field(None, description="hub id or path; used only without a 'base' input")
        backend: Literal["auto", "hf", "unsloth"] = "auto"
        mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
        launcher: Literal["none", "accelerate"] = "none"
        num_processes: int | None = Field(None, gt=0, description="accelerate launcher processes; None: one per GPU")

        @field_validator("method")
        @classmethod
        def _known_method(cls, value: str) -> str:
            from opensem.training.methods import method_names

            names = method_names()
            if value not in names:
                raise ValueError(f"unknown training method {value!r}; known: {', '.join(names)}")
            return value

        @field_validator("target_modules")
        @classmethod
        def _some_modules(cls, value: list[str] | str) -> list[str] | str:
            if not value:
                raise ValueError(f"target_modules must name at least one module or be {ALL_LINEAR!r}")
            return value

        @field_validator("batch_size")
        @classmethod
        def _batch_fits_method(cls, value: int, info: ValidationInfo) -> int:
            from opensem.training.methods import get_method, method_names

            method = info.data.get("method")
            least = get_method(method).min_batch_size if method in method_names() else 1
            if value < least:
                raise ValueError(f"{method} needs a batch of {least} or more records per device, got {value}")
            return value

    class Settings(StageParams):
        """How to run; never part of the lot."""

        save_steps: int = Field(200, gt=0)
        report_to: Literal["none", "wandb", "tensorboard"] = "none"
        gradient_checkpointing: bool | Literal["auto"] = False
        max_vram_gb: float | None = Field(None, gt=0)
        allow_cpu_fallback: bool = False
        strict_hardware_check: bool = True

    def run(self, params: Params, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        """Check the data and the hardware, train, and write the artifact, metrics.jsonl and loss.png into out_dir."""
        from opensem.training.methods import get_method
        from opensem.training.methods.base import Runtime, TrainHooks, TrainRequest, resolve_base_model
        from opensem.training.data import check_shapes, load_records

        method = get_method(params.method)
        settings = self.Settings.model_validate(ctx.settings)
        records = load_records(_train_file(inputs))
        check_shapes(records, method.shapes, method.name)  # before any model is loaded
        hyper = hyperparams(params, settings.save_steps)
        model_path = resolve_base_model(inputs, params.base_model, self.name)
        _check_tracker(settings.report_to)
        report, processes = preflight(method, params, settings, model_path, ctx)

        bar: list[Progress] = []

        def start(total: int, done: int) -> None:
            bar.append(ctx.progress("training", total))
            if done:
                bar[0].advance(done)  # resumed from a checkpoint

        def step() -> None:
            if bar:
                bar[0].advance()

        def log(row: dict[str, Any]) -> None:
            ctx.log.debug("step %s loss %.4f", row["step"], row["loss"])

        def end() -> None:
            while bar:
                bar.pop().close()

        lot = ctx.lot[:12] or "run"
        runtime = Runtime(
            backend=params.backend,
            gradient_checkpointing=report.gradient_checkpointing,
            cpu_fallback=report.cpu_fallback,
            report_to=settings.report_to,
            tracking_dir=ctx.cache_dir / "tensorboard" / ctx.job_id / lot,
            run_name=f"{ctx.job_id}-{lot}",
            vram_cap_gb=report.cap_gb,
        )
        request = TrainRequest(
            model_path=model_path,
            records=records.records,
            out_dir=out_dir / method.artifact,
            work_dir=ctx.work_dir,
            hyper=hyper,
            base_model_name=None if "base" in inputs else params.base_model,
            hooks=TrainHooks(on_start=start, on_step=step, on_log=log, on_end=end),
            runtime=runtime,
            log=ctx.log,
        )
        try:
            if params.launcher == "accelerate":
                from opensem.training.launch import train_launched

                outcome = train_launched(method.name, request, processes, inputs.get("accelerate_config"), params.mixed_precision)
            else:
                outcome = method.train(request)
        finally:
            end()
        write_metrics(outcome.log, out_dir / "metrics.jsonl")
        plot_loss(outcome.log, out_dir / "loss.png", f"{method.name}, {len(records)} records")
        return _result(method.name, len(records), outcome, report.gradient_checkpointing)


def hyperparams(params: Train.Params, save_steps: int = 200) -> Hyperparams:
    """The method-facing view of the stage params."""
    from opensem.training.methods.base import Hyperparams

    return Hyperparams(
        rank=params.rank,
        alpha=params.alpha,
        dropout=params.dropout,
        target_modules=params.target_modules if isinstance(params.target_modules, str) else tuple(params.target_modules),
        epochs=params.epochs,
        max_steps=params.max_steps,
        learning_rate=params.learning_rate,
        max_seq_length=params.max_seq_length,
        logging_steps=params.logging_steps,
        batch_size=params.batch_size,
        grad_accum=params.grad_accum,
        seed=params.seed,
        beta=params.beta,
        warmup_ratio=params.warmup_ratio,
        lr_scheduler=params.lr_scheduler,
        mixed_precision=params.mixed_precision,
        save_steps=save_steps,
    )


def preflight(method: Method, params: Train.Params, settings: Train.Settings, model_path: str, ctx: StageContext) -> tuple[HardwareReport, int]:
    """Judge the run against this machine before any model loads; log the verdict. Returns (report, processes)."""
    from opensem.training.hardware import HardwarePlan, MethodProfile, check_hardware, model_shape, query_devices

    devices = query_devices()
    processes = 1
    if params.launcher == "accelerate":
        processes = params.num_processes or max(1, len(devices))
    profile = MethodProfile(method.name, method.full, method.quantized, method.paired, method.vram_floor_gb)
    plan = HardwarePlan(
        method=profile,
        shape=model_shape(model_path),
        seq_len=params.max_seq_length,
        batch_size=params.batch_size,
        rank=params.rank,
        gradient_checkpointing=settings.gradient_checkpointing,
        strict=settings.strict_hardware_check,
        max_vram_gb=settings.max_vram_gb,
        allow_cpu_fallback=settings.allow_cpu_fallback,
        processes=processes if devices else 1,
    )
    report = check_hardware(plan, devices)
    for warning in report.warnings:
        ctx.log.warning(warning)
    ctx.log.info(report.summary(method.name))
    return report, processes


def _result(method: str, count: int, outcome: TrainOutcome, checkpointing: bool) -> StageResult:
    first = outcome.log[0]["loss"] if outcome.log else outcome.train_loss
    resumed = f", resumed at step {outcome.resumed_from}" if outcome.resumed_from else ""
    metrics: dict[str, Any] = {
        "train_loss": round(outcome.train_loss, 6),
        "steps": outcome.steps,
        "train_runtime_s": round(outcome.runtime_s, 3),
        "train_records": count,
        "backend": outcome.backend,
        "device": outcome.device,
        "gradient_checkpointing": checkpointing,
        "tokens": outcome.tokens,
        "tokens_per_s": round(outcome.tokens / outcome.runtime_s, 1) if outcome.runtime_s > 0 else None,
        "peak_memory_mb": outcome.peak_memory_mb,
        "resumed_from_step": outcome.resumed_from,
        "processes": outcome.processes,
    }
    return StageResult(
        summary=f"{method} ({outcome.backend}, {outcome.device}): {outcome.steps} steps on {count} records, "
        f"loss {first:.3f} -> {outcome.train_loss:.3f}{resumed}",
        metrics=metrics,
    )


def _check_tracker(report_to: str) -> None:
    """A tracker the manifest names must be installed; say so before minutes of loading, not after."""
    import importlib.util

    package = {"wandb": "wandb", "tensorboard": "tensorboard"}.get(report_to)
    if package and importlib.util.find_spec(package) is None:
        from opensem.errors import StageError

        raise StageError(f"training.report_to is {report_to}, and the {package} package is not installed", hint=f"pip install {package}")


def _train_file(inputs: dict[str, Path]) -> Path:
    if "train" not in inputs:
        raise DataError("train: no 'train' input", hint="wire the split stage's output into the 'train' slot")
    path = Path(inputs["train"])
    if path.is_dir():
        path = path / "train.jsonl"
    if not path.is_file():
        raise DataError("train: the train input has no train.jsonl", Location(file=str(path)), hint="check the split stage")
    return path
