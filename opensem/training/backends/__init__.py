"""Training backends behind one interface: how a model is loaded, given an adapter and checkpointed.

Two backends exist: `unsloth` (fused kernels, 4-bit loading, its own gradient checkpointing) and
`hf` (transformers + peft + trl). `backend: auto` takes unsloth when CUDA is present and unsloth
imports, hf otherwise. Asking for unsloth where it cannot run, or auto missing it on a GPU, falls
back to hf with a warning rather than failing: the run is slower, not wrong. unsloth is imported
only here, inside the train action, because importing it patches transformers and trl globally and
fails outright on a machine without a GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from opensem.errors import UsageError

BACKENDS = ("hf", "unsloth")
REQUESTS = ("auto", *BACKENDS)


@dataclass(frozen=True)
class LoadSpec:
    """What to load and how: the same for every backend."""

    model_path: str
    max_seq_length: int
    seed: int
    cuda: bool
    quantized: bool = False  # the frozen base in 4 bits (qlora); only with CUDA
    full: bool = (
        False  # every weight trains (sft): load in float32 so the optimizer keeps precision
    )
    gradient_checkpointing: bool = False


@dataclass(frozen=True)
class AdapterSpec:
    """A LoRA (or DoRA) adapter; targets are module names, or one regex string over module paths."""

    rank: int
    alpha: int
    dropout: float
    targets: tuple[str, ...] | str
    use_dora: bool = False
    modules_to_save: tuple[
        str, ...
    ] = ()  # trained in full beside the adapter (embeddings, output head)
    layers: tuple[int, ...] | None = None  # the blocks adapted; None: all


class Backend(Protocol):
    name: ClassVar[str]

    def load(self, spec: LoadSpec, stage: str) -> tuple[Any, Any]:
        """The model and its tokenizer (with a pad token), ready for an adapter or full training."""
        ...

    def add_adapter(self, model: Any, adapter: AdapterSpec, spec: LoadSpec) -> tuple[Any, Any]:
        """(model, peft config for the trainer): either the model already wrapped with a fresh adapter
        (config None), or the bare model and the config the trl trainer wraps it with. Seed first:
        the adapter's initial weights are drawn by whichever wraps it."""
        ...

    def trainer_checkpointing(self, spec: LoadSpec) -> bool:
        """Whether the trainer should switch on gradient checkpointing itself (unsloth does its own)."""
        ...


@dataclass(frozen=True)
class BackendChoice:
    """The backend a run uses, and why; warn is set when the run is worse off than it asked for."""

    name: str
    reason: str
    warn: bool = False


def unsloth_import_error() -> str | None:
    """None when unsloth imports here, else why not (it raises NotImplementedError without a GPU)."""
    try:
        import unsloth  # noqa: F401  (imported for its side effects: it patches transformers and trl)
    except (
        Exception
    ) as exc:  # ImportError, NotImplementedError, and whatever a broken install raises
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}"
    return None


def choose_backend(
    requested: str, cuda: bool, import_error: Callable[[], str | None] = unsloth_import_error
) -> BackendChoice:
    """The backend for a request (auto, hf or unsloth) on this machine; imports unsloth only on CUDA."""
    if requested not in REQUESTS:
        raise UsageError(
            f"unknown training backend {requested!r}", hint=f"use one of: {', '.join(REQUESTS)}"
        )
    fallback = "hf (transformers + peft + trl): slower steps and more memory than unsloth"
    if requested == "hf":
        return BackendChoice("hf", "backend hf, as the manifest asks")
    if not cuda:
        if requested == "unsloth":
            return BackendChoice(
                "hf",
                f"backend unsloth needs a CUDA GPU and this machine has none; training with {fallback}",
                warn=True,
            )
        return BackendChoice(
            "hf",
            "no CUDA device: backend auto picks hf (transformers + peft + trl) on the CPU; unsloth needs a GPU",
        )
    error = import_error()
    if error is None:
        return BackendChoice(
            "unsloth", f"CUDA present and unsloth imports: backend {requested} trains with unsloth"
        )
    asked = "was asked for" if requested == "unsloth" else "would have been chosen for this GPU"
    return BackendChoice(
        "hf",
        f"unsloth {asked} but does not import ({error}); training with {fallback}. Install it with `pip install "
        "'opensem[gpu]'`",
        warn=True,
    )


def get_backend(name: str) -> Backend:
    """The backend implementation called name (hf or unsloth)."""
    if name == "unsloth":
        from opensem.training.backends.unsloth import UnslothBackend

        return UnslothBackend()
    if name == "hf":
        from opensem.training.backends.hf import HfBackend

        return HfBackend()
    raise UsageError(
        f"unknown training backend {name!r}", hint=f"use one of: {', '.join(BACKENDS)}"
    )


def resolve_backend(requested: str, cuda: bool, log: logging.Logger) -> Backend:
    """Choose, log the choice (a warning when it falls back) and return the backend."""
    choice = choose_backend(requested, cuda)
    log.log(logging.WARNING if choice.warn else logging.INFO, choice.reason)
    return get_backend(choice.name)
