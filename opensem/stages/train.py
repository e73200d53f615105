"""Stage kind train: fine-tune a base model on the train split with a registered method.

The data is checked against the method's record shapes before any model loads. Checkpoints go
to the lot's work dir (a killed run resumes there); out_dir receives only the final artifacts:
adapter/, metrics.jsonl (one row per logging step) and loss.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from opensem.errors import DataError, Location
from opensem.methods.base import ALL_LINEAR
from opensem.stages import register
from opensem.stages.base import Progress, StageContext, StageParams, StageResult


def write_metrics(rows: list[dict[str, Any]], path: Path) -> None:
    """One compact JSON object per logged step, keys sorted so equal logs give equal bytes."""
    text = "".join(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")


def plot_loss(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Training loss over steps as a PNG; Agg canvas on a bare Figure, so no pyplot global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    steps = [row["step"] for row in rows if row.get("loss") is not None]
    losses = [row["loss"] for row in rows if row.get("loss") is not None]
    axes.plot(steps, losses, marker="o" if len(steps) < 30 else None, linewidth=1.5)
    axes.set_xlabel("step")
    axes.set_ylabel("training loss")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})


@register
class Train:
    name = "train"
    version = "1"

    class Params(StageParams):
        method: str = "lora"
        rank: int = Field(16, gt=0)
        alpha: int | None = Field(None, gt=0, description="LoRA alpha; None means 2 * rank")
        dropout: float = Field(0.05, ge=0.0, lt=1.0)
        target_modules: list[str] | str = ALL_LINEAR
        epochs: float | None = Field(None, gt=0)
        max_steps: int | None = Field(None, gt=0, description="wins over epochs; neither set means one epoch")
        learning_rate: float = Field(2e-4, gt=0)
        max_seq_length: int = Field(512, gt=1)
        logging_steps: int = Field(10, gt=0)
        batch_size: int = Field(4, gt=0)
        grad_accum: int = Field(1, gt=0)
        seed: int = 42
        base_model: str | None = Field(None, description="hub id or path; used only without a 'base' input")

        @field_validator("method")
        @classmethod
        def _known_method(cls, value: str) -> str:
            from opensem.methods import method_names

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

    def run(self, params: Params, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        """Check the data, train, and write adapter/, metrics.jsonl and loss.png into out_dir."""
        from opensem.methods import get_method
        from opensem.methods.base import Hyperparams, TrainHooks, TrainRequest, resolve_base_model
        from opensem.methods.data import check_shapes, load_records

        method = get_method(params.method)
        records = load_records(_train_file(inputs))
        check_shapes(records, method.shapes, method.name)  # before any model is loaded
        model_path = resolve_base_model(inputs, params.base_model, self.name)

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

        hyper = Hyperparams(
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
        )
        request = TrainRequest(
            model_path=model_path,
            records=records.records,
            out_dir=out_dir / "adapter",
            work_dir=ctx.work_dir,
            hyper=hyper,
            base_model_name=None if "base" in inputs else params.base_model,
            hooks=TrainHooks(on_start=start, on_step=step, on_log=log, on_end=end),
        )
        try:
            outcome = method.train(request)
        finally:
            end()
        write_metrics(outcome.log, out_dir / "metrics.jsonl")
        plot_loss(outcome.log, out_dir / "loss.png", f"{method.name}, {len(records)} records")
        first = outcome.log[0]["loss"] if outcome.log else outcome.train_loss
        return StageResult(
            summary=f"{method.name}: {outcome.steps} steps on {len(records)} records, loss {first:.3f} -> {outcome.train_loss:.3f}",
            metrics={
                "train_loss": round(outcome.train_loss, 6),
                "steps": outcome.steps,
                "train_runtime_s": round(outcome.runtime_s, 3),
                "train_records": len(records),
            },
        )


def _train_file(inputs: dict[str, Path]) -> Path:
    if "train" not in inputs:
        raise DataError("train: no 'train' input", hint="wire the split stage's output into the 'train' slot")
    path = Path(inputs["train"])
    if path.is_dir():
        path = path / "train.jsonl"
    if not path.is_file():
        raise DataError("train: the train input has no train.jsonl", Location(file=str(path)), hint="check the split stage")
    return path
