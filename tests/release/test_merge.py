"""Merging adapters through peft and whole models through mergekit; refusing what cannot merge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opensem.errors import DataError
from opensem.release.merge import Part, find_part, merge_adapters, merge_models, refusals


def parts(adapters: dict[str, Path], *names: str, weight: float = 1.0) -> list[Part]:
    return [find_part(name, adapters[name].parent, weight) for name in names]


def test_find_part_reads_what_the_config_files_say(
    adapters: dict[str, Path], tiny_model_dir: Path
) -> None:
    a, dora = (
        find_part("a", adapters["a"].parent, 1.0),
        find_part("d", adapters["dora"].parent, 0.5),
    )
    assert (a.kind, a.rank, a.dora, a.path.name) == ("adapter", 4, False, "adapter")
    assert dora.dora and dora.weight == 0.5
    assert find_part("m", tiny_model_dir, 1.0).kind == "model"
    with pytest.raises(DataError, match="no adapter"):
        find_part("x", tiny_model_dir.parent.parent, 1.0)


def test_what_cannot_be_merged_is_refused_from_the_config_files(
    adapters: dict[str, Path], tiny_model_dir: Path
) -> None:
    assert refusals(parts(adapters, "a", "b"), "dare_ties") == []
    assert (
        refusals(parts(adapters, "a", "wide"), "cat") == []
        and refusals(parts(adapters, "a", "wide"), "svd") == []
    )
    [ranks] = refusals(parts(adapters, "a", "wide"), "dare_ties")
    assert "combines adapters of one rank" in ranks and "a r=4, wide r=8" in ranks
    assert any("peft issue 3761" in p for p in refusals(parts(adapters, "a", "dora"), "linear"))
    model = find_part("full", tiny_model_dir, 1.0)
    assert any(
        "adapters and whole models" in p for p in refusals([*parts(adapters, "a"), model], "linear")
    )
    assert refusals([model, model], "cat") == [
        "cat merges adapters; whole models merge with linear, ties, dare_ties, dare_linear"
    ]


@pytest.mark.parametrize("method", ["dare_ties", "linear", "cat"])
def test_the_merge_is_peft_add_weighted_adapter_seeded(
    adapters: dict[str, Path], tiny_model_dir: Path, tmp_path: Path, method: str
) -> None:
    """The merged adapter holds exactly what peft's add_weighted_adapter makes, called by hand with the same seed."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    chosen = parts(adapters, "a", "b") if method != "cat" else parts(adapters, "a", "wide")
    weights = [1.0, 0.5]
    chosen = [Part(p.name, p.path, w, p.kind, p.rank) for p, w in zip(chosen, weights)]
    details = merge_adapters(
        str(tiny_model_dir), chosen, method, 0.5, "total", None, 7, tmp_path / "ours"
    )

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
        str(chosen[0].path),
        adapter_name="x",
    )
    model.load_adapter(str(chosen[1].path), adapter_name="y")
    torch.manual_seed(7)
    extra = {"density": 0.5, "majority_sign_method": "total"} if method == "dare_ties" else {}
    model.add_weighted_adapter(["x", "y"], weights, "m", combination_type=method, **extra)
    model.set_adapter("m")
    model.save_pretrained(str(tmp_path / "peft"), selected_adapters=["m"])

    ours, theirs = (
        load_file(tmp_path / "ours" / "adapter_model.safetensors"),
        load_file(tmp_path / "peft" / "m" / "adapter_model.safetensors"),
    )
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert details["rank"] == (12 if method == "cat" else 4)
    config = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    assert (
        config["base_model_name_or_path"] is None
        and (tmp_path / "ours" / "tokenizer.json").is_file()
    )


def test_a_merge_is_deterministic(
    adapters: dict[str, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        merge_adapters(
            str(tiny_model_dir),
            parts(adapters, "a", "b"),
            "dare_ties",
            0.3,
            "frequency",
            None,
            3,
            tmp_path / name,
        )
    assert (tmp_path / "one" / "adapter_model.safetensors").read_bytes() == (
        tmp_path / "two" / "adapter_model.safetensors"
    ).read_bytes()
    merge_adapters(
        str(tiny_model_dir),
        parts(adapters, "a", "b"),
        "dare_ties",
        0.3,
        "frequency",
        None,
        4,
        tmp_path / "other-seed",
    )
    assert (tmp_path / "other-seed" / "adapter_model.safetensors").read_bytes() != (
        tmp_path / "one" / "adapter_model.safetensors"
    ).read_bytes()


def test_whole_models_merge_through_mergekit(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from opensem.training.tiny import make_tiny_model

    models = [
        find_part(name, make_tiny_model(tmp_path / name / "model", seed=seed).parent, 0.5)
        for name, seed in (("x", 1), ("y", 2))
    ]
    for out in ("m1", "m2"):
        merge_models(str(tiny_model_dir), models, "dare_ties", 0.5, 11, tmp_path / out)
    assert (tmp_path / "m1" / "model.safetensors").read_bytes() == (
        tmp_path / "m2" / "model.safetensors"
    ).read_bytes()
    assert (
        not (tmp_path / "m1" / "mergekit_config.yml").exists()
        and (tmp_path / "m1" / "tokenizer.json").is_file()
    )
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "m1")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[1, 20, 30, 40]])
    assert not torch.allclose(merged(ids).logits, base(ids).logits)
    shutil.rmtree(tmp_path / "x")
