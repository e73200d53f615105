"""The train stage's Training Floor duties: method and data checks before loading, the preflight and
backend choice in its log, run settings, full-model artifacts, trackers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opensem.errors import DataError, HardwareIncompatibleError, ManifestError
from opensem.stages.base import StageContext
from opensem.stages.train import Train
from opensem.training.config import ComputeConfig, TrainingConfig, TrainParams
from tests.logs import recording_logger
from tests.stages.test_train_evaluate import facts, write_jsonl
from tests.training.params import train_params

PREFERENCES = [
    {
        "id": f"p{i}",
        "source": "s",
        "prompt": f"Name {i}",
        "chosen": f"It is {i}.",
        "rejected": "No.",
    }
    for i in range(12)
]


def context(root: Path, log: logging.Logger | None = None) -> StageContext:
    extra: dict[str, Any] = {"log": log} if log else {}
    return StageContext(
        project_root=root,
        job_id="floor",
        stage_name="train",
        work_dir=root / "work",
        cache_dir=root / "cache",
        lot="ab" * 32,
        **extra,
    )


def run(
    root: Path,
    base: Path | None,
    records: list[dict[str, Any]],
    params: TrainParams,
    log: logging.Logger | None = None,
) -> tuple[Path, Any]:
    train_dir = write_jsonl(root / "split", "train.jsonl", records)
    out = root / "out"
    out.mkdir(exist_ok=True)
    inputs = {"train": train_dir} if base is None else {"train": train_dir, "base": base}
    return out, Train().run(params, inputs, out, context(root, log))


@pytest.mark.parametrize("method", ["dpo", "orpo", "kto"])
def test_preference_methods_on_instruction_data_fail_before_any_model_loads(
    tmp_path: Path, method: str
) -> None:
    # The base model does not exist: only a check that runs before loading can produce the DataError.
    params = train_params(method, max_steps=1, base_model=str(tmp_path / "no-such-model"))
    with pytest.raises(DataError) as info:
        run(tmp_path, None, facts(0, 6), params)
    assert info.value.message.startswith(
        f"{method}: 6 of 6 records lack the fields it needs (prompt, "
    )
    assert "instruction" in info.value.message and info.value.location.line == 1
    assert list((tmp_path / "out").iterdir()) == []


def test_the_log_says_which_backend_and_why_and_what_the_preflight_found(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    params = train_params(
        "dpo", rank=4, max_steps=3, logging_steps=1, batch_size=4, learning_rate=5e-3, beta=0.2
    )
    log, recorder = recording_logger("train-floor")
    out, result = run(tmp_path, tiny_model_dir.parent, PREFERENCES, params, log)
    messages = recorder.at("INFO")
    assert any(
        m.startswith("hardware: no CUDA GPU, training on the CPU") and "dpo needs about" in m
        for m in messages
    )
    assert (
        "no CUDA device: backend auto picks hf (transformers + peft + trl) on the CPU; unsloth needs a GPU"
        in messages
    )
    assert (
        result.metrics["backend"] == "hf"
        and result.metrics["device"] == "cpu"
        and result.metrics["steps"] == 3
    )
    assert (
        result.metrics["tokens"] > 0
        and result.metrics["tokens_per_s"] > 0
        and result.metrics["resumed_from_step"] == 0
    )
    assert result.summary.startswith("dpo (hf, cpu): 3 steps on 12 records")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3] and all(
        "rewards/margins" in row for row in rows
    )
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "loss.png", "metrics.jsonl"]


def test_sft_writes_a_model_folder_and_tensorboard_events_go_to_the_cache(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    params = train_params(
        "sft", max_steps=2, logging_steps=1, batch_size=4, report_to="tensorboard", save_steps=1
    )
    out, result = run(tmp_path, tiny_model_dir.parent, facts(0, 8), params)
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "metrics.jsonl", "model"]
    assert (out / "model" / "model.safetensors").is_file() and not (
        out / "model" / "adapter_config.json"
    ).exists()
    events = list(
        (tmp_path / "cache" / "tensorboard" / "floor" / "abababababab").glob(
            "events.out.tfevents.*"
        )
    )
    assert len(events) == 1 and events[0].stat().st_size > 0
    assert not (
        tmp_path / "work" / "checkpoints"
    ).exists()  # save_steps 1 checkpointed every step; cleaned after


def test_an_unrunnable_method_is_refused_by_the_preflight_before_loading(tmp_path: Path) -> None:
    params = train_params("qlora", max_steps=1, base_model=str(tmp_path / "no-such-model"))
    with pytest.raises(HardwareIncompatibleError, match="qlora needs a CUDA GPU"):
        run(tmp_path, None, facts(0, 4), params)


def test_run_settings_are_validated_and_stay_out_of_the_lot() -> None:
    with pytest.raises(ValidationError):
        TrainingConfig(save_steps=0)
    with pytest.raises(ValidationError):
        TrainingConfig(report_to="mlflow")
    assert ComputeConfig(gradient_checkpointing="auto").gradient_checkpointing == "auto"
    from opensem.settings.fields import lot_view, run_view

    params = train_params(
        save_steps=7,
        report_to="tensorboard",
        gradient_checkpointing=True,
        strict_hardware_check=False,
    )
    assert run_view(params) == {
        "method_config": {"strict_hardware_check": False},
        "training": {"save_steps": 7, "report_to": "tensorboard"},
        "compute": {
            "gradient_checkpointing": True,
            "max_vram_gb": None,
            "allow_cpu_fallback": False,
            "accelerate_config": None,
        },
    }
    assert lot_view(params) == lot_view(train_params())  # none of them changes what is trained


def test_the_graph_refuses_a_batch_the_method_cannot_use(tmp_path: Path) -> None:
    from opensem.manifest.loader import load_manifest
    from opensem.stages.wiring import build_graph

    (tmp_path / "data" / "x" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "x" / "raw" / "a.txt").write_text("text")
    manifest = tmp_path / "x.yaml"
    for method, batch, ok in (("kto", 1, False), ("kto", 2, True), ("dpo", 1, True)):
        manifest.write_text(
            f"job_id: x\nbase_model: org/m\nmethod_config: {{type: {method}}}\ncompute:\n  batch_size: {batch}\n"
        )
        if ok:
            assert (
                build_graph(load_manifest(manifest)).node("train").params["compute"]["batch_size"]
                == batch
            )
            continue
        with pytest.raises(ManifestError) as info:
            build_graph(load_manifest(manifest))
        (problem,) = info.value.problems
        assert problem.location.key == "compute.batch_size" and problem.location.line == 5
        assert problem.message == "kto needs a batch of 2 or more records per device, got 1"


def test_missing_tracker_packages_are_named_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    params = train_params(
        max_steps=1, base_model=str(tmp_path / "no-such-model"), report_to="wandb"
    )
    with pytest.raises(
        Exception, match="training.report_to is wandb, and the wandb package is not installed"
    ):
        run(tmp_path, None, facts(0, 4), params)


def test_the_floor_imports_no_ml_library_until_it_trains() -> None:
    import subprocess
    import sys

    code = (
        "import sys, opensem.training.hardware, opensem.training.launch, opensem.training.backends.hf, "
        "opensem.training.backends.unsloth\n"
        "from opensem.training.methods import method_names, get_method\n"
        "from opensem.stages.train import Train\n"
        "[Train.Params.model_validate({'method_config': {'type': m, **({'teacher': 'org/teacher'} if m == 'distill' "
        "else {})}, 'seed': 1}) for m in method_names()]\n"
        "from opensem.training.hardware import HardwarePlan, MethodProfile, check_hardware, Device\n"
        "check_hardware(HardwarePlan(MethodProfile('lora'), None, 512, 4, 16), [Device('NVIDIA H100', 80, 79)])\n"
        "heavy = {'torch', 'transformers', 'peft', 'trl', 'datasets', 'unsloth', 'matplotlib'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
