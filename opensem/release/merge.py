"""Merging trained artifacts: LoRA adapters through peft's weighted-adapter merge, whole fine-tuned
models through mergekit.

Everything that can be refused is refused from the artifacts' config files, before any weight is
loaded: DoRA adapters (peft's weighted merge gives silently wrong results for them, peft issue
3761), adapters whose ranks a method cannot combine, adapters mixed with whole models, and whole
models with a method only adapters have. DARE drops values at random, so every merge is seeded.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from opensem.errors import DataError, Location

MergeMethod = Literal["linear", "ties", "dare_ties", "dare_linear", "magnitude_prune", "cat", "svd"]
# peft combines these on the A and B matrices directly, so every adapter needs the same rank.
SAME_RANK: tuple[str, ...] = ("linear", "ties", "dare_ties", "dare_linear", "magnitude_prune")
USES_DENSITY: tuple[str, ...] = ("ties", "dare_ties", "dare_linear", "magnitude_prune")
USES_SIGN: tuple[str, ...] = ("ties", "dare_ties")
# Methods for whole models, as mergekit names them.
FULL_MODEL_METHODS: dict[str, str] = {
    "linear": "linear",
    "ties": "ties",
    "dare_ties": "dare_ties",
    "dare_linear": "dare_linear",
}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "tokenizer.model",
)


@dataclass(frozen=True)
class Part:
    """One artifact to merge: an adapter folder or a whole-model folder, with its weight."""

    name: str  # where it came from, for messages: a manifest's job id, "train", or a release
    path: Path
    weight: float
    kind: Literal["adapter", "model"]
    rank: int | None = None
    dora: bool = False


def find_part(name: str, root: Path, weight: float) -> Part:
    """The adapter (adapter_config.json) or whole model (config.json) in a train/merge output or a release."""
    from opensem.training.methods.base import artifact_in

    found = artifact_in(root)
    if found is not None and found[0] == "model":
        return Part(name, found[1], weight, "model")
    if found is not None:
        config = json.loads((found[1] / "adapter_config.json").read_text(encoding="utf-8"))
        return Part(
            name, found[1], weight, "adapter", int(config.get("r", 0)), bool(config.get("use_dora"))
        )
    raise DataError(
        f"merge source {name}: no adapter (adapter_config.json) and no model (config.json)",
        Location(file=str(root)),
    )


def refusals(parts: list[Part], method: str) -> list[str]:
    """Why these artifacts cannot be merged with method (empty when they can)."""
    problems: list[str] = []
    kinds = {part.kind for part in parts}
    if len(kinds) > 1:
        shown = ", ".join(f"{p.name} ({p.kind})" for p in parts)
        problems.append(f"adapters and whole models cannot be merged together: {shown}")
    dora = [p.name for p in parts if p.dora]
    if dora:
        problems.append(
            "DoRA adapters cannot go through peft's weighted merge (it gives wrong results for them, peft issue "
            f"3761): {', '.join(dora)}"
        )
    ranks = {p.rank for p in parts if p.kind == "adapter"}
    if kinds == {"adapter"} and method in SAME_RANK and len(ranks) > 1:
        shown = ", ".join(f"{p.name} r={p.rank}" for p in parts)
        problems.append(
            f"{method} combines adapters of one rank, and these differ ({shown}); cat and svd combine any ranks"
        )
    if kinds == {"model"} and method not in FULL_MODEL_METHODS:
        problems.append(
            f"{method} merges adapters; whole models merge with {', '.join(FULL_MODEL_METHODS)}"
        )
    return problems


def merge_adapters(
    base_path: str,
    parts: list[Part],
    method: str,
    density: float,
    sign: str,
    rank: int | None,
    seed: int,
    out_dir: Path,
) -> dict[str, Any]:
    """peft's add_weighted_adapter over the parts; the merged adapter (with the first part's tokenizer)
    goes to out_dir."""
    import torch
    from peft import PeftModel

    from opensem.training.methods.base import load_causal_lm, normalize_adapter_dir, quiet_libraries

    names = [f"source{index}" for index in range(len(parts))]
    with quiet_libraries():
        model = PeftModel.from_pretrained(
            load_causal_lm(base_path, "merge"), str(parts[0].path), adapter_name=names[0]
        )
        for name, part in zip(names[1:], parts[1:]):
            model.load_adapter(str(part.path), adapter_name=name)
        extra: dict[str, Any] = {}
        if method in USES_DENSITY:
            extra["density"] = density
        if method in USES_SIGN:
            extra["majority_sign_method"] = sign
        if method == "svd" and rank is not None:
            extra["svd_rank"] = rank
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # DARE prunes at random
            model.add_weighted_adapter(
                names, [p.weight for p in parts], "merged", combination_type=method, **extra
            )
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*was active which is now deleted"
            )  # merged is the one kept
            for name in names:
                model.delete_adapter(name)
        staging = out_dir.parent / f".{out_dir.name}-saving"
        model.save_pretrained(str(staging), selected_adapters=["merged"])
    saved = staging / "merged" if (staging / "merged").is_dir() else staging
    shutil.move(str(saved), str(out_dir))
    shutil.rmtree(staging, ignore_errors=True)
    copy_tokenizer(parts[0].path, out_dir)
    normalize_adapter_dir(out_dir, None)
    config = json.loads((out_dir / "adapter_config.json").read_text(encoding="utf-8"))
    return {"rank": config.get("r"), "target_modules": config.get("target_modules")}


def merge_models(
    base_path: str, parts: list[Part], method: str, density: float, seed: int, out_dir: Path
) -> dict[str, Any]:
    """mergekit over whole models, with the base as the reference the task vectors are taken against."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    parameters: dict[str, Any] = {"density": density} if method in USES_DENSITY else {}
    config = MergeConfiguration.model_validate(
        {
            "merge_method": FULL_MODEL_METHODS[method],
            "base_model": str(Path(base_path).resolve()),
            "models": [
                {"model": str(p.path.resolve()), "parameters": {"weight": p.weight, **parameters}}
                for p in parts
            ],
            "dtype": "float32",
        }
    )
    run_merge(
        config,
        str(out_dir),
        options=MergeOptions(
            copy_tokenizer=False, lazy_unpickle=False, random_seed=seed, quiet=True
        ),
    )
    for machine_specific in ("README.md", "mergekit_config.yml"):  # they name this machine's paths
        (out_dir / machine_specific).unlink(missing_ok=True)
    copy_tokenizer(parts[0].path, out_dir)
    return {}


def copy_tokenizer(source: Path, destination: Path) -> None:
    """The tokenizer (and chat template) the sources were trained with travels with the merge."""
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, destination / name)
