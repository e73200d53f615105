"""The contract every training method fulfils, and the pieces methods share.

A method is a class with a name, the record shapes it can train on, a memory profile the hardware
preflight reads, and a train(request) that writes its artifact (an adapter, or a whole model) into
request.out_dir. The train stage checks the data against the method's shapes before any model is
loaded, so a wrong dataset fails in a second with a message naming the method and the missing
fields, not after a minute of loading weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from opensem.errors import StageError

if TYPE_CHECKING:
    from opensem.training.config import TrainParams
    from opensem.training.methods.options import MethodOptions

# Record shapes, as alternative sets of required fields. A record fits a shape when it has all
# fields of at least one alternative.
SFT_SHAPES: tuple[tuple[str, ...], ...] = (("messages",), ("text",))
PREFERENCE_SHAPES: tuple[tuple[str, ...], ...] = (("prompt", "chosen", "rejected"),)
# KTO learns from single completions labelled good or bad; a preference pair gives one of each.
FEEDBACK_SHAPES: tuple[tuple[str, ...], ...] = (
    ("prompt", "completion", "label"),
    ("prompt", "chosen", "rejected"),
)


@dataclass(frozen=True)
class Runtime:
    """How and where a run trains, as the hardware preflight decided it from the run settings.

    Nothing here changes what the run should learn; see opensem.stages.train.
    """

    gradient_checkpointing: bool = False
    cpu_fallback: bool = False  # qlora without CUDA: train plain LoRA in float32 instead of failing
    tracking_dir: Path | None = None  # tensorboard event files
    run_name: str | None = None  # the tracker's name for the run
    vram_cap_gb: float | None = None  # per-process cap on a consumer card


@dataclass
class TrainHooks:
    """How a method reports back while it trains, without knowing about stages or consoles."""

    on_start: Callable[[int, int], None] = lambda total_steps, steps_done: (
        None
    )  # done > 0 on resume
    on_step: Callable[[], None] = lambda: None
    on_log: Callable[[dict[str, Any]], None] = lambda row: None
    on_end: Callable[[], None] = lambda: None
    on_resume: Callable[[int, str], None] = lambda step, checkpoint: (
        None
    )  # before training continues


@dataclass(frozen=True)
class TrainRequest:
    """Everything a method needs for one training run."""

    model_path: str  # a local directory or a hub id
    records: list[dict[str, Any]]
    out_dir: Path  # where the artifact goes (e.g. the adapter directory)
    work_dir: Path  # scratch for checkpoints
    params: TrainParams  # method_config, training, compute and seed, as the manifest has them
    base_model_name: str | None = None  # what the artifact records as its base; None: not recorded
    hooks: TrainHooks = field(default_factory=TrainHooks)
    runtime: Runtime = field(default_factory=Runtime)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("opensem.train"))
    eval_records: list[dict[str, Any]] | None = (
        None  # validation rows (training.eval_steps): eval loss, best checkpoint, early stopping
    )
    models: dict[str, str] = field(
        default_factory=dict
    )  # other models the method reads, by role (distill: teacher, teacher_base)


@dataclass(frozen=True)
class TrainOutcome:
    """What a run produced besides its files."""

    train_loss: float
    steps: int
    runtime_s: float
    log: list[dict[str, Any]]
    backend: str = "hf"
    device: str = "cpu"
    tokens: int = 0  # tokens the optimizer steps saw (padding excluded), for tokens/s
    peak_memory_mb: float | None = None  # peak accelerator memory; None on a CPU
    resumed_from: int = 0  # the checkpoint step a killed run resumed from; 0 for a fresh run
    processes: int = 1  # data-parallel processes that trained (accelerate launcher)


class Method(Protocol):
    name: ClassVar[str]
    Options: ClassVar[
        type[MethodOptions]
    ]  # its `method_config` options (opensem.training.methods.options)
    shapes: ClassVar[tuple[tuple[str, ...], ...]]
    artifact: ClassVar[str]  # "adapter" (peft) or "model" (full weights): out_dir's subfolder
    # Memory profile, read by the hardware preflight before any model loads.
    full: ClassVar[bool]  # every weight trains (optimizer state for all of them)
    quantized: ClassVar[bool]  # the frozen base loads in 4 bits
    paired: ClassVar[bool]  # each example is two sequences (chosen and rejected)
    vram_floor_gb: ClassVar[
        float | None
    ]  # below this card size, refuse without gradient checkpointing
    min_batch_size: ClassVar[int]  # records per device per step the method's loss needs
    token_shape: ClassVar[
        str
    ]  # how the tokenize stage stores its records: sft, preference or feedback

    def train(self, request: TrainRequest) -> TrainOutcome:
        """Train on the request's records; the adapter (or model) goes to its out_dir."""


def metric_row(
    step: int, logs: dict[str, Any], extra: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """One metrics.jsonl row from a trainer log event, or None for non-training events.

    Every row has loss, learning_rate, grad_norm and epoch; extra names method-specific values
    (a preference method's reward margin) that are kept when the trainer logged them.
    """
    if "eval_loss" in logs and "loss" not in logs:
        return {"step": step, "eval_loss": float(logs["eval_loss"])}
    if "loss" not in logs:
        return None
    row: dict[str, Any] = {"step": step}
    for key in ("loss", "learning_rate", "grad_norm", "epoch", *extra):
        value = logs.get(key)
        if value is None and key in extra:
            continue
        row[key] = float(value) if isinstance(value, (int, float)) else None
    return row


def hf_callback(hooks: TrainHooks) -> Any:
    """A transformers TrainerCallback that forwards trainer events to hooks."""
    from transformers import TrainerCallback

    class _Forward(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            hooks.on_start(int(state.max_steps), int(state.global_step))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            hooks.on_step()

        def on_log(
            self,
            args: Any,
            state: Any,
            control: Any,
            logs: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            row = metric_row(int(state.global_step), logs or {})
            if row is not None:
                hooks.on_log(row)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            hooks.on_end()

    return _Forward()


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence transformers (and datasets, if imported) progress bars, chatter and deprecations; restore after.

    datasets is only touched when the caller already imported it, so code that never needs it
    (building the tiny model, evaluation) does not pay for its import.
    """
    from transformers.utils import logging as tf_logging

    datasets = sys.modules.get("datasets")
    tf_verbosity, tf_bars = tf_logging.get_verbosity(), tf_logging.is_progress_bar_enabled()
    tf_logging.set_verbosity_error()
    tf_logging.disable_progress_bar()
    if datasets is not None:
        ds_verbosity, ds_bars_off = (
            datasets.logging.get_verbosity(),
            datasets.are_progress_bars_disabled(),
        )
        datasets.logging.set_verbosity_error()
        datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            # Library-internal deprecations (trl passing gradient_checkpointing) are not the user's to fix.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        tf_logging.set_verbosity(tf_verbosity)
        if tf_bars:
            tf_logging.enable_progress_bar()
        if datasets is not None:
            datasets.logging.set_verbosity(ds_verbosity)
            if not ds_bars_off:
                datasets.enable_progress_bars()


def artifact_in(root: Path) -> tuple[str, Path] | None:
    """("adapter", folder) for a PEFT adapter, ("model", folder) for a whole model, found in a train
    or merge output (adapter/, model/), a release, or the folder itself; None when it holds neither."""
    for kind, marker, folders in (
        ("adapter", "adapter_config.json", ("adapter", ".")),
        ("model", "config.json", ("model", ".")),
    ):
        for folder in folders:
            if (root / folder / marker).is_file():
                return kind, root / folder
    return None


def resolve_base_model(inputs: dict[str, Path], base_model: str | None, stage: str) -> str:
    """The base model to load: the "base" input slot (its model/ subdirectory if present), else the param."""
    if "base" in inputs:
        base = Path(inputs["base"])
        return str(base / "model" if (base / "model").is_dir() else base)
    if base_model:
        return base_model
    raise StageError(
        f"{stage}: no base model: neither a 'base' input nor the base_model parameter is set",
        hint="set base_model to a hub id or local path, or wire a tiny_model stage into the 'base' input",
    )


def load_model(model_path: str, stage: str) -> Any:
    """The causal LM for evaluation and review, on the GPU when there is one."""
    import torch

    model = load_causal_lm(model_path, stage)
    return model.to("cuda") if torch.cuda.is_available() else model


def load_causal_lm(model_path: str, stage: str) -> Any:
    """Load a causal LM for training or evaluation: float32 on CPU, the checkpoint's dtype on GPU."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype: Any = "auto" if torch.cuda.is_available() else torch.float32
    try:
        return AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    except OSError as exc:
        raise StageError(
            f"{stage}: cannot load base model {model_path!r}: {exc}",
            hint="check the path or hub id; offline machines need a local model directory",
        ) from exc


def load_tokenizer(model_path: str, stage: str) -> Any:
    """Load the tokenizer of a model, giving it a pad token (eos) when it has none."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except OSError as exc:
        raise StageError(f"{stage}: cannot load tokenizer of {model_path!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def normalize_adapter_dir(adapter_dir: Path, base_model_name: str | None) -> None:
    """Make a saved PEFT adapter's text files stable: sorted keys and module lists, no machine paths.

    peft writes target_modules from a set (order varies per process) and records the absolute
    path the base was loaded from; both would change the output digest with nothing changed.
    Its placeholder README model card is dropped: the publish stage writes the real one.
    """
    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for key in ("target_modules", "modules_to_save", "exclude_modules"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    config["base_model_name_or_path"] = base_model_name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    readme = adapter_dir / "README.md"
    if readme.exists():
        readme.unlink()
