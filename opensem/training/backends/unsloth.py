"""The unsloth backend: FastLanguageModel loading (4-bit where asked), get_peft_model, and unsloth's
offloaded gradient checkpointing. Only ever imported on a CUDA machine where `import unsloth` works
(opensem.training.backends.choose_backend checks that first); unsloth patches transformers and trl
on import, so trl's trainers then run its fused kernels.
"""

from __future__ import annotations

from typing import Any, ClassVar

from opensem.errors import StageError
from opensem.training.backends import AdapterSpec, LoadSpec


class UnslothBackend:
    name: ClassVar[str] = "unsloth"

    def load(self, spec: LoadSpec, stage: str) -> tuple[Any, Any]:
        """Model and tokenizer through FastLanguageModel; dtype picked by unsloth for the card."""
        from unsloth import FastLanguageModel

        try:
            model, tokenizer = FastLanguageModel.from_pretrained(
                model_name=spec.model_path,
                max_seq_length=spec.max_seq_length,
                dtype=None,
                load_in_4bit=spec.quantized,
                full_finetuning=spec.full,
                use_gradient_checkpointing=_checkpointing(spec),
                random_state=spec.seed,
            )
        except OSError as exc:
            raise StageError(
                f"{stage}: unsloth cannot load base model {spec.model_path!r}: {exc}",
                hint="check the path or hub id; or set compute.backend: hf",
            ) from exc
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer

    def add_adapter(self, model: Any, adapter: AdapterSpec, spec: LoadSpec) -> tuple[Any, Any]:
        """The model wrapped by unsloth's get_peft_model, which its fused LoRA kernels need."""
        from unsloth import FastLanguageModel

        wrapped = FastLanguageModel.get_peft_model(
            model,
            r=adapter.rank,
            lora_alpha=adapter.alpha,
            lora_dropout=adapter.dropout,
            target_modules=adapter.targets
            if isinstance(adapter.targets, str)
            else list(adapter.targets),
            bias="none",
            use_gradient_checkpointing=_checkpointing(spec),
            random_state=spec.seed,
            use_dora=adapter.use_dora,
            modules_to_save=list(adapter.modules_to_save) or None,
            layers_to_transform=list(adapter.layers) if adapter.layers is not None else None,
        )
        return wrapped, None

    def trainer_checkpointing(self, spec: LoadSpec) -> bool:
        """Never: unsloth's own (offloaded) checkpointing is already in the model."""
        return False  # unsloth's own (offloaded) checkpointing is already in the model


def _checkpointing(spec: LoadSpec) -> str | bool:
    return "unsloth" if spec.gradient_checkpointing else False
