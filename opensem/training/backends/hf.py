"""The hf backend: transformers loads the model, peft adds the adapter, trl trains.

Runs everywhere: on a CPU in float32, on a GPU in the checkpoint's dtype with mixed precision,
and for qlora on a GPU with the frozen base quantized to 4-bit NF4 by bitsandbytes.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, ClassVar

from opensem.errors import StageError
from opensem.training.backends import AdapterSpec, LoadSpec


class HfBackend:
    name: ClassVar[str] = "hf"

    def load(self, spec: LoadSpec, stage: str) -> tuple[Any, Any]:
        """Tokenizer and model; 4-bit base for qlora on CUDA, float32 for full training and on CPUs."""
        import torch
        from transformers import AutoModelForCausalLM

        from opensem.training.methods.base import load_tokenizer

        tokenizer = load_tokenizer(spec.model_path, stage)
        kwargs: dict[str, Any] = {"dtype": torch.float32}
        if spec.cuda and spec.quantized:
            kwargs = _four_bit(stage)
        elif spec.cuda and not spec.full:
            kwargs = {
                "dtype": "auto"
            }  # the frozen base stays in its 16-bit dtype; mixed precision trains the adapter
        try:
            model = AutoModelForCausalLM.from_pretrained(spec.model_path, **kwargs)
        except OSError as exc:
            raise StageError(
                f"{stage}: cannot load base model {spec.model_path!r}: {exc}",
                hint="check the path or hub id; offline machines need a local model directory",
            ) from exc
        if spec.cuda and spec.quantized:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model,
                use_gradient_checkpointing=spec.gradient_checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False},
            )
        return model, tokenizer

    def add_adapter(self, model: Any, adapter: AdapterSpec, spec: LoadSpec) -> tuple[Any, Any]:
        """The bare model and a LoraConfig: trl wraps the model itself, and its preference trainers then
        use the base with the adapter switched off as reference (a pre-wrapped model would make
        them copy the adapter as a second, "ref" one)."""
        from peft import LoraConfig

        config = LoraConfig(
            r=adapter.rank,
            lora_alpha=adapter.alpha,
            lora_dropout=adapter.dropout,
            target_modules=adapter.targets
            if isinstance(adapter.targets, str)
            else list(adapter.targets),
            use_dora=adapter.use_dora,
            layers_to_transform=list(adapter.layers) if adapter.layers is not None else None,
            modules_to_save=list(adapter.modules_to_save) or None,
            bias="none",
            task_type="CAUSAL_LM",
        )
        return model, config

    def trainer_checkpointing(self, spec: LoadSpec) -> bool:
        """Whether the trainer turns on gradient checkpointing."""
        return spec.gradient_checkpointing


def _four_bit(stage: str) -> dict[str, Any]:
    """from_pretrained arguments for an NF4 base with double quantization, on this process's GPU."""
    import torch
    from transformers import BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise StageError(
            f"{stage}: 4-bit loading needs bitsandbytes, which is not installed",
            hint="pip install 'opensem[gpu]' (or bitsandbytes alone)",
        )
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )
    # Quantized weights cannot be moved after loading: place them on this process's GPU directly.
    device = int(os.environ.get("LOCAL_RANK", "0"))
    return {"quantization_config": quantization, "dtype": compute, "device_map": {"": device}}
