"""Stage kind train: fine-tune a base model on the train split with a registered method.

Order matters: the data is checked against the method's record shapes, then the hardware
preflight judges the run against this machine's GPUs (or RAM), and only then does a model load.
Checkpoints go to the lot's work dir, so a killed build resumes there; out_dir receives only the
final artifacts: adapter/ (or model/ for full fine-tuning), metrics.jsonl and loss.png.

Its params are the manifest's method_config, training and compute sections as written. What
enters the lot is what changes the trained bytes, the backend included; the run settings (the
checkpoint interval, trackers, gradient checkpointing, VRAM cap, the hardware policy) are marked
as such on their fields, so changing them never retrains anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opensem.data.persona import SYSTEM_PROMPT_FILE, records_with_persona
from opensem.errors import DataError, Location, StageError
from opensem.settings.sections import sections_from
from opensem.stages import register
from opensem.stages.base import TRAINING_LIBRARIES, Progress, StageContext, StageResult
from opensem.stages.wiring import Wiring
from opensem.training.config import TrainParams
from opensem.training.loss_curve import plot_loss

if TYPE_CHECKING:
    from opensem.training.hardware import HardwareReport
    from opensem.training.methods.base import Method, TrainOutcome


def write_metrics(rows: list[dict[str, Any]], path: Path) -> None:
    """One compact JSON object per logged step, keys sorted so equal logs give equal bytes."""
    text = "".join(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")


@register
class Train:
    name = "train"
    libraries = TRAINING_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    version = "4"  # 4: stored ids train through Trainer and opensem's collator (not SFTTrainer); 3: params as written

    Params = TrainParams
    sections = sections_from(TrainParams, "method_config", "training", "compute")

    def wire(self, wiring: Wiring) -> None:
        """The train stage, locally or by a provider, with its teacher when it distills."""
        from opensem.training.methods import get_method

        m = wiring.manifest
        method = get_method(m.method_config.type)
        if m.compute.batch_size < method.min_batch_size:
            wiring.problem(
                ("compute", "batch_size"),
                f"{method.name} needs a batch of {method.min_batch_size} or more records per device, got "
                f"{m.compute.batch_size}",
                f"raise compute.batch_size to {method.min_batch_size}",
            )
        if m.compute.backend == "openai":
            self._wire_provider(wiring, method)
        if m.training.eval_steps is not None and method.token_shape != "sft":
            wiring.problem(
                ("training", "eval_steps"),
                "validation during training is for the supervised methods (sft, lora, dora, qlora, distill), not "
                f"{method.name}",
                "remove eval_steps, or train with lora",
            )
        for key, on in (
            ("packing", m.training.packing),
            ("loss_on", m.training.loss_on == "assistant"),
        ):
            if on and method.token_shape != "sft":
                wiring.problem(
                    ("training", key),
                    f"{method.name} trains on prompt/answer pairs: training.{key} is for the supervised methods",
                    f"remove training.{key}",
                )
        tokens = wiring.channel("tokens") if m.compute.backend != "openai" else None
        data = (
            {"tokens": tokens} if tokens is not None else {"train": wiring.channel("train")}
        )  # token ids when the tokenize stage made them
        inputs = {**data, **({} if m.compute.backend == "openai" else wiring.base_inputs())}
        if getattr(m.method_config, "teacher", None) is not None:
            inputs.update(_teacher_inputs(wiring, m.method_config.teacher))
        # FSDP, DeepSpeed, machines: it shapes the run, so its bytes key the lot
        if m.compute.accelerate_config is not None:
            inputs["accelerate_config"] = wiring.source(
                m.compute.accelerate_config, ("compute", "accelerate_config")
            )
        params = TrainParams(
            method_config=m.method_config,
            training=m.training,
            compute=m.compute,
            seed=m.seed,
            base_model=wiring.hub_model,
            persona=wiring.persona(),
        )
        wiring.add(self, params, inputs, provides=("adapter",))

    @staticmethod
    def _wire_provider(wiring: Wiring, method: Any) -> None:
        """What a provider can fine-tune: its own model (a name, not a local one), on chats or
        preference pairs, and nothing after it needs weights."""
        from opensem.training.methods.base import PREFERENCE_SHAPES, SFT_SHAPES

        if wiring.hub_model is None:
            wiring.problem(
                ("base_model",),
                "compute.backend openai fine-tunes the provider's model: base_model must be its name "
                "(gpt-4o-mini-2024-07-18)",
                "name the provider's model, or train locally (backend auto)",
            )
        if method.shapes not in (SFT_SHAPES, PREFERENCE_SHAPES) or method.name == "orpo":
            wiring.problem(
                ("method_config", "type"),
                f"the provider fine-tunes supervised (sft, lora) or dpo; not {method.name}",
                "use lora, sft or dpo",
            )
        for key in ("merge", "fold", "quantize"):
            if getattr(wiring.manifest, key, None) is not None:
                wiring.problem(
                    (key,),
                    f"{key} needs the weights, and a provider-tuned model stays with the provider",
                    f"remove `{key}:` or train locally",
                )

    def run(
        self, params: TrainParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Check the data and the hardware, train, and write the artifact, metrics.jsonl and loss.png into out_dir."""
        from opensem.training.data import check_shapes, load_records
        from opensem.training.methods import get_method
        from opensem.training.methods.base import (
            Runtime,
            TrainHooks,
            TrainRequest,
            resolve_base_model,
        )

        method = get_method(params.method_config.type)
        validation: list[dict[str, Any]] | None = None
        if "tokens" in inputs:  # checked and tokenized by the tokenize stage
            from opensem.training.data import RecordSet
            from opensem.training.tokenized import training_rows

            rows, validation = training_rows(Path(inputs["tokens"]))
            records = RecordSet(
                Path(inputs["tokens"]) / "train.npz", rows, list(range(1, len(rows) + 1))
            )
        else:
            records = load_records(_train_file(inputs))
            check_shapes(records, method.shapes, method.name)  # before any model is loaded
        if params.compute.backend == "openai":
            return _provider_train(
                params,
                records_with_persona(records.records, params.persona),
                method.name,
                out_dir,
                ctx,
            )
        model_path = resolve_base_model(inputs, params.base_model, self.name)
        _check_tracker(params.training.report_to)
        report, processes = preflight(method, params, model_path, ctx)

        bar: list[Progress] = []

        def start(total: int, done: int) -> None:
            bar.append(ctx.progress("training", total))
            if done:
                bar[0].advance(done)  # resumed from a checkpoint

        def step() -> None:
            if bar:
                bar[0].advance()

        def log(row: dict[str, Any]) -> None:
            which = "loss" if "loss" in row else "eval_loss"
            ctx.log.debug("step %s %s %.4f", row["step"], which, row[which])
            ctx.measure(which, int(row["step"]), float(row[which]))

        def end() -> None:
            while bar:
                bar.pop().close()

        lot = ctx.lot[:12] or "run"
        runtime = Runtime(
            gradient_checkpointing=report.gradient_checkpointing,
            cpu_fallback=report.cpu_fallback,
            tracking_dir=ctx.cache_dir / "tensorboard" / ctx.job_id / lot,
            run_name=f"{ctx.job_id}-{lot}",
            vram_cap_gb=report.cap_gb,
        )
        request = TrainRequest(
            model_path=model_path,
            records=records.records
            if "tokens" in inputs
            else records_with_persona(records.records, params.persona),
            out_dir=out_dir / method.artifact,
            work_dir=ctx.work_dir,
            params=params,
            base_model_name=None if "base" in inputs else params.base_model,
            eval_records=validation,
            hooks=TrainHooks(on_start=start, on_step=step, on_log=log, on_end=end),
            runtime=runtime,
            log=ctx.log,
            models={
                role: str(inputs[role]) for role in ("teacher", "teacher_base") if role in inputs
            },
        )
        try:
            if params.compute.launcher == "accelerate":
                from opensem.training.launch import train_launched

                outcome = train_launched(
                    method.name, request, processes, inputs.get("accelerate_config")
                )
            else:
                outcome = method.train(request)
        finally:
            end()
        if params.persona:  # the server asks under the same persona the adapter was trained with
            (out_dir / method.artifact / SYSTEM_PROMPT_FILE).write_text(
                params.persona + "\n", encoding="utf-8"
            )
        write_metrics(outcome.log, out_dir / "metrics.jsonl")
        plot_loss(outcome.log, out_dir / "loss.png", f"{method.name}, {len(records)} records")
        return _result(
            method.name,
            len(records),
            outcome,
            report.gradient_checkpointing,
            "packed sequences" if params.training.packing else "records",
        )


def _teacher_inputs(wiring: Wiring, teacher: Any) -> dict[str, Any]:
    """A distillation teacher as inputs, so its bytes key the lot: a local folder, or another
    manifest's model and base."""
    key = ("method_config", "teacher")
    if isinstance(teacher, str):
        found = wiring.model_inputs(teacher, key)
        return {"teacher": found["model"]} if found else {}  # a hub id: its name is in the params
    other = wiring.include(teacher.manifest, (*key, "manifest"))
    if other is None:
        return {}
    if other.channel("adapter") is None:
        wiring.problem(
            (*key, "manifest"),
            f"{teacher.manifest} trains no model to teach with",
            "point at a manifest with data and training",
        )
        return {}
    return {
        "teacher": other.channel("adapter"),
        **({"teacher_base": other.base_inputs()["base"]} if other.base_inputs() else {}),
    }


def preflight(
    method: Method, params: TrainParams, model_path: str, ctx: StageContext
) -> tuple[HardwareReport, int]:
    """Judge the run against this machine before any model loads; log the verdict. Returns (report, processes)."""
    from opensem.training.hardware import (
        HardwarePlan,
        MethodProfile,
        check_hardware,
        model_shape,
        query_devices,
    )

    devices = query_devices()
    compute = params.compute
    processes = 1
    if compute.launcher == "accelerate":
        processes = compute.num_processes or max(1, len(devices))
    profile = MethodProfile(
        method.name, method.full, method.quantized, method.paired, method.vram_floor_gb
    )
    plan = HardwarePlan(
        method=profile,
        shape=model_shape(model_path),
        seq_len=params.training.max_seq_length,
        batch_size=compute.batch_size,
        rank=getattr(params.method_config, "rank", 0),
        gradient_checkpointing=compute.gradient_checkpointing,
        strict=params.method_config.strict_hardware_check,
        max_vram_gb=compute.max_vram_gb,
        allow_cpu_fallback=compute.allow_cpu_fallback,
        processes=processes if devices else 1,
    )
    report = check_hardware(plan, devices)
    for warning in report.warnings:
        ctx.log.warning(warning)
    ctx.log.info(report.summary(method.name))
    return report, processes


def _result(
    method: str, count: int, outcome: TrainOutcome, checkpointing: bool, what: str = "records"
) -> StageResult:
    trained = [row for row in outcome.log if "loss" in row]
    first = trained[0]["loss"] if trained else outcome.train_loss
    resumed = f", resumed at step {outcome.resumed_from}" if outcome.resumed_from else ""
    evals = [row for row in outcome.log if "eval_loss" in row]
    if evals:
        best = min(evals, key=lambda row: row["eval_loss"])
        first = evals[0]["eval_loss"]
        resumed += f"; validation loss {first:.3f} -> best {best['eval_loss']:.3f} at step {best['step']} (kept)"
    metrics: dict[str, Any] = {
        "train_loss": round(outcome.train_loss, 6),
        "steps": outcome.steps,
        "train_runtime_s": round(outcome.runtime_s, 3),
        "train_records": count,
        "backend": outcome.backend,
        "device": outcome.device,
        "gradient_checkpointing": checkpointing,
        "tokens": outcome.tokens,
        "tokens_per_s": round(outcome.tokens / outcome.runtime_s, 1)
        if outcome.runtime_s > 0
        else None,
        "peak_memory_mb": outcome.peak_memory_mb,
        "resumed_from_step": outcome.resumed_from,
        "processes": outcome.processes,
        **(
            {"best_eval_loss": min(row["eval_loss"] for row in evals), "eval_points": len(evals)}
            if evals
            else {}
        ),
    }
    return StageResult(
        summary=f"{method} ({outcome.backend}, {outcome.device}): {outcome.steps} steps on {count} {what}, "
        f"loss {first:.3f} -> {outcome.train_loss:.3f}{resumed}",
        metrics=metrics,
    )


def _provider_train(
    params: TrainParams,
    records: list[dict[str, Any]],
    method: str,
    out_dir: Path,
    ctx: StageContext,
) -> StageResult:
    from opensem.training.provider import ProviderTuning, chat_rows, fine_tune

    config = params.compute.provider or ProviderTuning()
    rows = chat_rows(records, method)
    model = fine_tune(
        rows,
        str(params.base_model),
        method,
        params.seed,
        config,
        ctx.work_dir,
        out_dir,
        lambda line: ctx.log.info("train: %s", line),
        ctx.lot,
    )
    return StageResult(
        summary=f"{method} through {config.base_url}: {model['model']} (job {model['job_id']}, {len(rows)} examples)",
        metrics={
            "provider_model": model["model"],
            "job_id": model["job_id"],
            "train_records": len(rows),
            "trained_tokens": model["trained_tokens"],
        },
    )


def _check_tracker(report_to: str) -> None:
    """A tracker the manifest names must be installed; say so before minutes of loading, not after."""
    import importlib.util

    package = {"wandb": "wandb", "tensorboard": "tensorboard"}.get(report_to)
    if package and importlib.util.find_spec(package) is None:
        raise StageError(
            f"training.report_to is {report_to}, and the {package} package is not installed",
            hint=f"pip install {package}",
        )


def _train_file(inputs: dict[str, Path]) -> Path:
    if "train" not in inputs:
        raise DataError(
            "train: no 'train' input", hint="wire the split stage's output into the 'train' slot"
        )
    path = Path(inputs["train"])
    if path.is_dir():
        path = path / "train.jsonl"
    if not path.is_file():
        raise DataError(
            "train: the train input has no train.jsonl",
            Location(file=str(path)),
            hint="check the split stage",
        )
    return path
