"""How much memory a training run needs: the model's shape from its config, and the usual
accounting of weights, optimizer state, activations and overhead. Read by the hardware preflight
(opensem.training.hardware) before any model loads.

Sizes are GiB (2**30 bytes), written "GB" in messages as the cards' spec sheets do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 2**30


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a causal LM that decide its training memory, read from config.json alone."""

    params: int
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    kv_dim: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelShape | None:
        """A Llama-family config (most open models) -> its shape; None when the keys are not there."""
        config = config.get("text_config", config)
        try:
            h, layers, vocab = (
                int(config["hidden_size"]),
                int(config["num_hidden_layers"]),
                int(config["vocab_size"]),
            )
            inter = int(config.get("intermediate_size") or 4 * h)
            heads = int(config.get("num_attention_heads") or 1)
        except (KeyError, TypeError, ValueError):
            return None
        head_dim = int(config.get("head_dim") or h // heads)
        kv = int(config.get("num_key_value_heads") or heads) * head_dim
        per_layer = h * heads * head_dim * 2 + 2 * h * kv + 3 * h * inter + 2 * h
        embeddings = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
        return cls(
            params=layers * per_layer + embeddings + h,
            hidden=h,
            layers=layers,
            intermediate=inter,
            vocab=vocab,
            kv_dim=kv,
        )

    @property
    def billions(self) -> float:
        """Parameters, in billions."""
        return self.params / 1e9


def model_shape(model_path: str) -> ModelShape | None:
    """The shape of a local model directory or a hub id (config.json only, never the weights); None if unknown."""
    local = Path(model_path).expanduser()
    try:
        if local.is_dir():
            return ModelShape.from_config(
                json.loads((local / "config.json").read_text(encoding="utf-8"))
            )
        if model_path.startswith(("/", ".", "~")):
            return None  # a path that is not there: loading will say so
        from huggingface_hub import hf_hub_download

        return ModelShape.from_config(
            json.loads(Path(hf_hub_download(model_path, "config.json")).read_text(encoding="utf-8"))
        )
    except Exception:  # offline, private, no config: the preflight then says the size is unknown
        return None


@dataclass(frozen=True)
class MethodProfile:
    """What a training method asks of memory (the class attributes of opensem.training.methods.base.Method)."""

    name: str
    full: bool = False
    quantized: bool = False
    paired: bool = False
    vram_floor_gb: float | None = None


@dataclass(frozen=True)
class MemoryEstimate:
    weights_gb: float
    training_gb: float  # trainable weights' gradients and Adam state (and fp32 copies of adapters)
    activations_gb: float  # kept for the backward pass, logits included
    overhead_gb: float  # CUDA context and allocator slack, or the interpreter and libraries

    @property
    def total_gb(self) -> float:
        """The whole estimate, in GB."""
        return self.weights_gb + self.training_gb + self.activations_gb + self.overhead_gb

    def breakdown(self) -> str:
        """The estimate by part, for messages."""
        return (
            f"weights {self.weights_gb:.1f}, optimizer {self.training_gb:.1f}, activations "
            f"{self.activations_gb:.1f}, overhead {self.overhead_gb:.1f}"
        )


def adapter_params(shape: ModelShape, rank: int) -> int:
    """LoRA parameters on q, k, v, o, gate, up and down of every layer: rank x (in + out) each."""
    h, kv, inter = shape.hidden, shape.kv_dim, shape.intermediate
    return shape.layers * rank * (2 * h + 2 * (h + kv) + 2 * h + 3 * (h + inter))


def estimate_memory(
    shape: ModelShape,
    method: MethodProfile,
    seq_len: int,
    batch: int,
    rank: int,
    checkpointing: bool,
    gpu: bool,
) -> MemoryEstimate:
    """Peak training memory of one process, from the usual accounting (weights, Adam, activations, logits).

    GPU: 16-bit frozen weights (4-bit for qlora, fp32 for full training), 16-bit activations of
    about 16h + 4i values per token and layer (h/layer boundaries only with checkpointing), fp32
    logits and their gradient. CPU: everything in float32.
    """
    weight_bytes = (0.55 if method.quantized else 4.0 if method.full else 2.0) if gpu else 4.0
    act_bytes = 2 if gpu else 4
    trainable = shape.params if method.full else adapter_params(shape, rank)
    training = trainable * (12 if method.full else 16)  # grads + Adam (+ the fp32 adapter weights)
    tokens = batch * seq_len * (2 if method.paired else 1)
    layer = act_bytes * (16 * shape.hidden + 4 * shape.intermediate)
    kept = (
        shape.layers * 2 * shape.hidden * act_bytes + layer
        if checkpointing
        else shape.layers * layer
    )
    activations = tokens * kept + tokens * shape.vocab * 8
    core = shape.params * weight_bytes + training + activations
    overhead = (1.0 * GIB + 0.1 * core) if gpu else 0.5 * GIB
    return MemoryEstimate(
        shape.params * weight_bytes / GIB, training / GIB, activations / GIB, overhead / GIB
    )
