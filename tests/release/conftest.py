"""Adapters and whole models for the release tests, made in seconds without training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def make_adapter(base: Path, out: Path, rank: int = 4, seed: int = 1, dora: bool = False, targets: list[str] | str = ("q_proj", "v_proj", "up_proj")) -> Path:  # type: ignore[assignment]
    """A LoRA adapter of the tiny base with random (nonzero) weights, saved as training saves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from opensem.training.methods.base import normalize_adapter_dir

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets if isinstance(targets, str) else list(targets), init_lora_weights=False, use_dora=dora, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(str(out))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (base / name).is_file():
            shutil.copy2(base / name, out / name)
    normalize_adapter_dir(out, None)
    return out


@pytest.fixture(scope="session")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {
        "a": make_adapter(tiny_model_dir, root / "a" / "adapter", seed=1),
        "b": make_adapter(tiny_model_dir, root / "b" / "adapter", seed=2),
        "wide": make_adapter(tiny_model_dir, root / "wide" / "adapter", rank=8, seed=3),
        "dora": make_adapter(tiny_model_dir, root / "dora" / "adapter", seed=4, dora=True),
    }
