"""LoRA adapters of the tiny model with random weights, made in seconds without training."""

from __future__ import annotations

import shutil
from pathlib import Path


def make_adapter(
    base: Path,
    out: Path,
    rank: int = 4,
    seed: int = 1,
    dora: bool = False,
    targets: tuple[str, ...] | str = ("q_proj", "v_proj", "up_proj"),
    random: bool = True,
) -> Path:
    """A LoRA adapter of the base with random (nonzero) weights, saved as training saves one; with
    random False, peft's own initialisation (B = 0: the base's answers, at an adapter's cost)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from opensem.training.methods.base import normalize_adapter_dir

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=targets if isinstance(targets, str) else list(targets),
        init_lora_weights=not random,
        use_dora=dora,
        task_type="CAUSAL_LM",
    )
    get_peft_model(model, config).save_pretrained(str(out))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (base / name).is_file():
            shutil.copy2(base / name, out / name)
    normalize_adapter_dir(out, None)
    return out
