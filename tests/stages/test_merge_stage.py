"""The merge stage's run: whole models through mergekit, and refusals before any weight loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.errors import DataError
from opensem.stages.base import StageContext
from opensem.stages.merge import Merge, MergeParams


def params(method: str = "dare_ties", names: tuple[str, ...] = ("a", "b")) -> MergeParams:
    sources = [
        {"manifest": f"{n}.yaml", "name": n, "slot": f"source{i}", "weight": 0.5}
        for i, n in enumerate(names)
    ]
    return MergeParams.model_validate({"method": method, "seed": 3, "sources": sources})


def context(root: Path) -> StageContext:
    return StageContext(
        project_root=root,
        job_id="m",
        stage_name="merge",
        work_dir=root / "work",
        cache_dir=root / "cache",
    )


def test_whole_models_merge_into_a_model_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    from opensem.training.tiny import make_tiny_model

    inputs = {"base": tiny_model_dir.parent}
    for index, seed in enumerate((1, 2)):
        make_tiny_model(tmp_path / f"train{index}" / "model", seed=seed)
        inputs[f"source{index}"] = tmp_path / f"train{index}"
    out = tmp_path / "out"
    out.mkdir()
    result = Merge().run(params(), inputs, out, context(tmp_path))
    assert (out / "model" / "model.safetensors").is_file() and result.metrics["kind"] == "model"
    assert json.loads((out / "merge.json").read_text()) == {
        "method": "dare_ties",
        "kind": "model",
        "sources": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}],
    }
    with pytest.raises(DataError, match="cat merges adapters; whole models merge with linear"):
        Merge().run(params("cat"), inputs, tmp_path, context(tmp_path))


def test_dora_adapters_are_refused_before_any_weight_loads(
    adapters: dict[str, Path], tmp_path: Path
) -> None:
    inputs = {
        "base": tmp_path / "no-such-base",
        "source0": adapters["a"].parent,
        "source1": adapters["dora"].parent,
    }
    # The base does not exist: only a check before loading can say this
    with pytest.raises(DataError, match="peft issue 3761"):
        Merge().run(params("linear", ("a", "dora")), inputs, tmp_path, context(tmp_path))
