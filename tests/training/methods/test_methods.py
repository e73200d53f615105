"""Every registered method trains the tiny model for a few steps on the CPU and saves an artifact that loads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from opensem.errors import DataError, HardwareIncompatibleError, UsageError
from opensem.training.data import RecordSet, check_shapes
from opensem.training.methods import get_method
from opensem.training.methods.base import Runtime, TrainOutcome, TrainRequest
from opensem.training.methods.checkpoints import checkpoint_step, last_checkpoint
from tests.logs import recording_logger
from tests.training.methods.test_lora import chats, preferences
from tests.training.params import train_params

pytestmark = pytest.mark.filterwarnings(
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"
)  # peft loading adapters

LINEAR = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def feedback(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"f{i}",
            "source": "test",
            "prompt": f"Say {i}",
            "completion": f"{i}" if i % 2 else "no",
            "label": bool(i % 2),
        }
        for i in range(n)
    ]


def train(
    name: str,
    records: list[dict[str, Any]],
    root: Path,
    runtime: Runtime | None = None,
    log: logging.Logger | None = None,
    **hyper: Any,
) -> TrainOutcome:
    settings = {
        "max_steps": 4,
        "logging_steps": 2,
        "learning_rate": 5e-3,
        "batch_size": 4,
        **({} if name == "sft" else {"rank": 4}),
        **hyper,
    }
    extra: dict[str, Any] = {"log": log} if log else {}
    request = TrainRequest(
        str(root / "base"),
        records,
        root / "out",
        root / "work",
        train_params(name, **settings),
        "tiny-test",
        runtime=runtime or Runtime(),
        **extra,
    )
    return get_method(name).train(request)


@pytest.fixture
def root(tiny_model_dir: Path, tmp_path: Path) -> Path:
    (tmp_path / "base").symlink_to(tiny_model_dir, target_is_directory=True)
    return tmp_path


def load_adapter(base: Path, adapter: Path) -> Any:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(adapter))


def moved_b(model: Any) -> bool:
    """LoRA B matrices start at zero: any nonzero one means the adapter learned something."""
    return any(float(p.abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_sft_trains_every_weight_and_saves_a_whole_model(root: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    outcome = train("sft", chats(16), root)
    out = root / "out"
    assert outcome.steps == 4 and {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / "adapter_config.json").exists() and not (out / "training_args.bin").exists()
    assert str(root) not in (out / "config.json").read_text()
    tuned, base = (
        AutoModelForCausalLM.from_pretrained(out),
        AutoModelForCausalLM.from_pretrained(root / "base"),
    )
    deltas = [
        float((a - b).abs().max())
        for a, b in zip(tuned.state_dict().values(), base.state_dict().values())
    ]
    assert (
        sum(d > 0 for d in deltas) > len(deltas) // 2
    )  # most tensors moved, not only some adapter
    assert torch.isfinite(tuned(torch.tensor([[1, 2, 3]])).logits).all()


def test_dora_adapter_records_use_dora_and_loads(root: Path) -> None:
    train("dora", chats(16), root)
    config = json.loads((root / "out" / "adapter_config.json").read_text())
    assert config["use_dora"] is True and config["target_modules"] == LINEAR
    tuned = load_adapter(root / "base", root / "out")
    assert any("lora_magnitude_vector" in n for n, _ in tuned.named_parameters()) and moved_b(tuned)


@pytest.mark.parametrize("name", ["dpo", "orpo"])
def test_preference_methods_train_an_adapter_on_preference_records(root: Path, name: str) -> None:
    outcome = train(name, preferences(16), root, beta=0.2)
    out = root / "out"
    assert outcome.steps == 4 and [row["step"] for row in outcome.log] == [1, 2, 4]
    assert all("rewards/margins" in row and "rewards/accuracies" in row for row in outcome.log)
    assert not (out / "ref").exists()  # the reference is the base with the adapter off, never saved
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["target_modules"] == LINEAR and config["use_dora"] is False
    assert moved_b(load_adapter(root / "base", out))


def test_kto_trains_on_preference_pairs_and_native_feedback(root: Path) -> None:
    outcome = train("kto", preferences(8), root)
    assert outcome.steps == 4 and moved_b(load_adapter(root / "base", root / "out"))
    again = root / "native"
    again.mkdir()
    (again / "base").symlink_to(root / "base", target_is_directory=True)
    assert train("kto", feedback(16), again).steps == 4
    with pytest.raises(UsageError, match="kto needs compute.batch_size of 2 or more, got 1"):
        train("kto", feedback(4), root, batch_size=1)


def test_qlora_without_cuda_is_refused_unless_the_cpu_fallback_is_allowed(root: Path) -> None:
    with pytest.raises(HardwareIncompatibleError, match="qlora needs a CUDA GPU") as info:
        train("qlora", chats(8), root)
    assert "allow_cpu_fallback" in info.value.hint and not (root / "out").exists()
    log, recorder = recording_logger("qlora")
    outcome = train(
        "qlora", chats(8), root, runtime=Runtime(cpu_fallback=True), log=log, max_steps=2
    )
    assert recorder.at("WARNING") == [
        "qlora without CUDA: 4-bit loading needs a GPU; training plain LoRA in float32 on the CPU"
    ]
    assert outcome.steps == 2 and moved_b(load_adapter(root / "base", root / "out"))


@pytest.mark.parametrize(
    ("name", "records", "missing"),
    [
        ("dpo", chats(3), "prompt, chosen, rejected"),
        ("orpo", chats(3), "prompt, chosen, rejected"),
        ("kto", chats(3), "prompt, completion, label | prompt, chosen, rejected"),
        ("sft", preferences(3), "messages | text"),
        ("dora", preferences(3), "messages | text"),
    ],
)
def test_shape_mismatch_names_the_method_and_the_missing_fields(
    tmp_path: Path, name: str, records: list[dict[str, Any]], missing: str
) -> None:
    with pytest.raises(DataError) as info:
        check_shapes(
            RecordSet(tmp_path / "train.jsonl", records, [1, 2, 3]), get_method(name).shapes, name
        )
    assert info.value.message.startswith(
        f"{name}: 3 of 3 records lack the fields it needs ({missing})"
    )


def test_malformed_preference_and_feedback_fields_are_refused(tmp_path: Path) -> None:
    bad = preferences(2)
    bad[1]["chosen"] = ""
    with pytest.raises(DataError, match="chosen must be a non-empty string") as info:
        check_shapes(RecordSet(tmp_path / "t.jsonl", bad, [1, 2]), get_method("dpo").shapes, "dpo")
    assert info.value.location.line == 2
    labels = feedback(2)
    labels[0]["label"] = "yes"
    with pytest.raises(DataError, match="label must be true .* got 'yes'"):
        check_shapes(
            RecordSet(tmp_path / "t.jsonl", labels, [1, 2]), get_method("kto").shapes, "kto"
        )


def test_only_complete_checkpoints_are_resumed(tmp_path: Path) -> None:
    assert last_checkpoint(tmp_path / "none") is None and checkpoint_step(None) == 0
    for step in (4, 8, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-8" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    found = last_checkpoint(
        tmp_path
    )  # checkpoint-12 was cut off while saving: no trainer_state.json
    assert found == str(tmp_path / "checkpoint-8") and checkpoint_step(found) == 8
