"""Full supervised fine-tuning: every weight trains, and the artifact is a whole model.

It needs about 16 bytes per parameter (weights, gradients and Adam state in float32) against a
LoRA run's 2, so the hardware preflight judges it accordingly. The model is saved with its
tokenizer under out/model/ and loads with AutoModelForCausalLM; there is no adapter to merge.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opensem.training.methods import register_method
from opensem.training.methods.lora import SupervisedMethod
from opensem.training.methods.options import MethodOptions


class SftOptions(MethodOptions):
    type: Literal["sft"] = Field(
        "sft",
        description="sft: full fine-tuning: every weight trains and the artifact is a whole model.",
    )


@register_method
class SftMethod(SupervisedMethod):
    """Full fine-tuning on chats and documents."""

    name = "sft"
    Options = SftOptions
    artifact = "model"
    full = True
