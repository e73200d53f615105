"""DoRA: LoRA with the weight split into magnitude and direction (peft's use_dora).

It tends to match full fine-tuning more closely than LoRA at the same rank, at some extra cost
per step; the adapter config records use_dora, so anything that loads it knows what it is (and a
merge that cannot handle DoRA can refuse it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opensem.training.methods import register_method
from opensem.training.methods.lora import SupervisedMethod
from opensem.training.methods.options import AdapterOptions


class DoraOptions(AdapterOptions):
    type: Literal["dora"] = Field(
        "dora",
        description="dora: LoRA with weights split into magnitude and direction (peft use_dora).",
    )


@register_method
class DoraMethod(SupervisedMethod):
    """Weight-decomposed low-rank adapters on the linear layers."""

    name = "dora"
    Options = DoraOptions
    use_dora = True
