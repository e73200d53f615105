"""The method registry and LoRA SFT: shape checks before loading, a real adapter that loads and generates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opensem.errors import DataError, UsageError
from opensem.training.data import RecordSet, check_shapes
from opensem.training.methods import get_method, method_names, register_method
from opensem.training.methods.base import TrainHooks, TrainRequest
from opensem.training.methods.lora import LoraMethod
from tests.logs import recording_logger
from tests.training.params import train_params


def chats(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{i}",
            "source": "test",
            "messages": [
                {"role": "user", "content": f"What is {i} plus one?"},
                {"role": "assistant", "content": f"{i} plus one is {i + 1}."},
            ],
        }
        for i in range(n)
    ]


def preferences(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"p{i}", "source": "test", "prompt": f"Say {i}", "chosen": f"{i}", "rejected": "no"}
        for i in range(n)
    ]


def test_registry_knows_every_method_and_refuses_unknown_names() -> None:
    assert sorted(method_names()) == [
        "distill",
        "dora",
        "dpo",
        "kto",
        "lora",
        "orpo",
        "qlora",
        "sft",
    ]
    assert isinstance(get_method("lora"), LoraMethod)
    with pytest.raises(UsageError, match="unknown training method 'nope'") as info:
        get_method("nope")
    assert "lora" in info.value.hint


def test_registering_a_second_method_under_a_taken_name_fails() -> None:
    class Impostor:
        name = "lora"
        shapes = LoraMethod.shapes

    with pytest.raises(ValueError, match="registered twice"):
        register_method(Impostor)
    assert isinstance(get_method("lora"), LoraMethod)


def test_preference_records_are_refused_by_lora_with_the_missing_fields(tmp_path: Path) -> None:
    records = RecordSet(tmp_path / "train.jsonl", preferences(3), [1, 2, 3])
    with pytest.raises(DataError) as info:
        check_shapes(records, get_method("lora").shapes, "lora")
    error = info.value
    assert error.message.startswith(
        "lora: 3 of 3 records lack the fields it needs (messages | text)"
    )
    assert "preference" in error.message
    assert error.location.line == 1 and error.location.file.endswith("train.jsonl")


def test_a_malformed_chat_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = chats(2)
    bad[1]["messages"][0]["role"] = "narrator"
    with pytest.raises(DataError, match="role must be one of") as info:
        check_shapes(RecordSet(tmp_path / "t.jsonl", bad, [1, 2]), LoraMethod.shapes, "lora")
    assert info.value.location.line == 2


@pytest.mark.filterwarnings(
    "ignore::FutureWarning"
)  # transformers' own deprecations inside generate
def test_lora_trains_an_adapter_that_loads_on_the_base_and_generates(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    events: dict[str, Any] = {"total": None, "steps": 0, "rows": [], "ended": False}
    hooks = TrainHooks(
        on_start=lambda total, done: events.update(total=total, done=done),
        on_step=lambda: events.update(steps=events["steps"] + 1),
        on_log=lambda row: events["rows"].append(row),
        on_end=lambda: events.update(ended=True),
    )
    request = TrainRequest(
        model_path=str(tiny_model_dir),
        records=chats(30),
        out_dir=tmp_path / "adapter",
        work_dir=tmp_path / "work",
        params=train_params(
            rank=4, max_steps=10, logging_steps=5, learning_rate=5e-3, batch_size=4
        ),
        base_model_name="tiny-test",
        hooks=hooks,
    )
    outcome = get_method("lora").train(request)

    assert (
        outcome.steps == 10 and events["total"] == 10 and events["steps"] == 10 and events["ended"]
    )
    assert events["done"] == 0
    assert (outcome.backend, outcome.device, outcome.resumed_from, outcome.peak_memory_mb) == (
        "hf",
        "cpu",
        0,
        None,
    )
    assert outcome.tokens > 10 * 4 * 5  # ten steps of four chats of a dozen-odd tokens
    assert [row["step"] for row in outcome.log] == [1, 5, 10]
    assert all(row["loss"] > 0 and row["grad_norm"] is not None for row in outcome.log)
    assert outcome.train_loss == outcome.log[-1]["loss"]

    adapter = tmp_path / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= {
        p.name for p in adapter.iterdir()
    }
    assert not (adapter / "README.md").exists()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["target_modules"] == [
        "down_proj",
        "gate_proj",
        "k_proj",
        "o_proj",
        "q_proj",
        "up_proj",
        "v_proj",
    ]
    assert (config["r"], config["lora_alpha"], config["base_model_name_or_path"]) == (
        4,
        8,
        "tiny-test",
    )
    assert not any(adapter.glob("checkpoint-*"))
    assert not (
        tmp_path / "work" / "checkpoints"
    ).exists()  # a finished run leaves nothing to resume

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tuned = PeftModel.from_pretrained(base, str(adapter))
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 3 plus one?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.inference_mode():
        out = tuned.generate(**prompt, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    # The adapter really changes the model: B matrices moved away from their zero init.
    lora_b = [p for n, p in tuned.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)


class Killed(Exception):
    pass


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_adapter(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    params = train_params(
        rank=4, max_steps=8, logging_steps=2, learning_rate=5e-3, batch_size=4, save_steps=4
    )

    log, recorder = recording_logger("lora-resume")

    def request(name: str, work: str, hooks: TrainHooks) -> TrainRequest:
        return TrainRequest(
            str(tiny_model_dir),
            chats(24),
            tmp_path / name,
            tmp_path / work,
            params,
            None,
            hooks,
            log=log,
        )

    straight = get_method("lora").train(request("straight", "work-a", TrainHooks()))

    steps: list[int] = []

    def die_at_six() -> None:
        steps.append(1)
        if len(steps) == 6:
            raise Killed

    with pytest.raises(Killed):
        get_method("lora").train(request("resumed", "work-b", TrainHooks(on_step=die_at_six)))
    assert (tmp_path / "work-b" / "checkpoints" / "checkpoint-4").is_dir()

    started: list[tuple[int, int]] = []
    noted: list[int] = []
    hooks = TrainHooks(
        on_start=lambda t, d: started.append((t, d)),
        on_resume=lambda step, path: noted.append(step),
    )
    resumed = get_method("lora").train(request("resumed", "work-b", hooks))
    assert started == [(8, 4)] and noted == [4] and resumed.resumed_from == 4
    assert "resuming from checkpoint checkpoint-4 (step 4) of a killed run" in recorder.at("INFO")
    assert resumed.steps == 8 and [row["step"] for row in resumed.log] == [1, 2, 4, 6, 8]
    assert resumed.train_loss == pytest.approx(straight.train_loss, rel=1e-5)
    weights = "adapter_model.safetensors"
    assert (tmp_path / "resumed" / weights).read_bytes() == (
        tmp_path / "straight" / weights
    ).read_bytes()


def test_explicit_target_modules_are_kept(tiny_model_dir: Path, tmp_path: Path) -> None:
    params = train_params(
        rank=2, alpha=3, target_modules=["v_proj", "q_proj"], max_steps=2, batch_size=8
    )
    get_method("lora").train(
        TrainRequest(str(tiny_model_dir), chats(8), tmp_path / "a", tmp_path / "w", params)
    )
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert (config["target_modules"], config["r"], config["lora_alpha"]) == (
        ["q_proj", "v_proj"],
        2,
        3,
    )
