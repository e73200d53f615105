"""QLoRA: LoRA adapters on a base model quantized to 4-bit NF4, for large models on small cards.

The frozen base takes about a quarter of its 16-bit memory. 4-bit loading needs CUDA (bitsandbytes
on the hf backend, or unsloth's pre-quantized loading): without a GPU the run is refused before
any model loads, unless compute.allow_cpu_fallback lets it train plain LoRA in float32 instead.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opensem.training.methods import register_method
from opensem.training.methods.lora import SupervisedMethod
from opensem.training.methods.options import AdapterOptions


class QloraOptions(AdapterOptions):
    type: Literal["qlora"] = Field("qlora", description="qlora: LoRA over a 4-bit NF4 base (CUDA).")


@register_method
class QloraMethod(SupervisedMethod):
    """Low-rank adapters over a 4-bit frozen base."""

    name = "qlora"
    Options = QloraOptions
    quantized = True
