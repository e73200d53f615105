"""Folding an adapter into its base: one plain model folder anything that reads transformers loads.

The result has safetensors weights, config.json, generation_config.json, the tokenizer and its
chat template, so `AutoModelForCausalLM.from_pretrained(folder)` loads it with no peft and gives
the logits of base + adapter. The merge runs in float32 and is saved in the base checkpoint's
dtype (or the one asked for).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

from opensem.release.merge import copy_tokenizer, find_part

FoldDtype = Literal["auto", "float32", "float16", "bfloat16"]


def checkpoint_dtype(model_dir: str) -> str:
    """The dtype a checkpoint was saved in (config.json), float32 when it does not say."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "float32"
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


def fold(base_path: str, trained: Path, out_dir: Path, dtype: FoldDtype) -> dict[str, Any]:
    """Write base + the adapter in trained (a train or merge output) as one model into out_dir.

    A whole fine-tuned model (method sft, or a merge of them) is already folded: it is copied.
    """
    import torch
    from peft import PeftModel

    from opensem.training.methods.base import load_causal_lm, quiet_libraries

    part = find_part("trained", trained, 1.0)
    if part.kind == "model":
        shutil.copytree(part.path, out_dir)
        return {"folded": False, "dtype": checkpoint_dtype(str(part.path))}
    target = checkpoint_dtype(base_path) if dtype == "auto" else dtype
    with quiet_libraries():
        model = PeftModel.from_pretrained(
            load_causal_lm(base_path, "fold"), str(part.path)
        ).merge_and_unload()
        model = model.to(getattr(torch, target))
        model.save_pretrained(str(out_dir), safe_serialization=True)
    copy_tokenizer(part.path, out_dir)
    (out_dir / "README.md").unlink(missing_ok=True)
    return {
        "folded": True,
        "dtype": target,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
