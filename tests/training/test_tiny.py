"""The tiny model: loads through the Auto classes offline, generates, renders chats, builds reproducibly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.stages.base import StageContext
from opensem.stages.tiny_model import TinyModel
from opensem.training.tiny import BOS_TOKEN, EOS_TOKEN, count_parameters, make_tiny_model


def test_loads_with_auto_classes_and_generates(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "llama"
    assert len(tokenizer) == model.config.vocab_size == 2000
    assert tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    prompt = tokenizer("The river runs past the old mill", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    assert isinstance(tokenizer.decode(out[0, prompt["input_ids"].shape[1] :]), str)


def test_tokenizer_round_trips_text_and_adds_bos(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "Hello, world! Ünïcode and numbers 12345 survive."
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_chat_template_renders_roles_and_generation_prompt(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert (
        rendered
        == f"{BOS_TOKEN}<|system|>\nBe brief.{EOS_TOKEN}<|user|>\nHi{EOS_TOKEN}<|assistant|>\nHello.{EOS_TOKEN}"
    )
    prompt = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(f"Hi{EOS_TOKEN}<|assistant|>\n")
    role_ids = tokenizer.convert_tokens_to_ids(["<|system|>", "<|user|>", "<|assistant|>"])
    assert all(
        isinstance(i, int) and i < 10 for i in role_ids
    )  # atomic special tokens, not split into bytes


def test_same_arguments_same_bytes(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = make_tiny_model(tmp_path / "again")
    names = sorted(p.name for p in tiny_model_dir.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(
        names
    )
    for name in names:
        assert (tiny_model_dir / name).read_bytes() == (again / name).read_bytes(), name


def test_seed_and_shape_change_the_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    other = make_tiny_model(tmp_path / "other", seed=1, hidden_size=32, num_heads=2, vocab_size=600)
    assert (other / "model.safetensors").read_bytes() != (
        tiny_model_dir / "model.safetensors"
    ).read_bytes()
    config = json.loads((other / "config.json").read_text())
    assert (config["hidden_size"], config["num_attention_heads"], config["vocab_size"]) == (
        32,
        2,
        600,
    )
    assert count_parameters(other) < count_parameters(tiny_model_dir)


def test_rejects_impossible_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must divide hidden_size"):
        make_tiny_model(tmp_path / "x", hidden_size=65, num_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        make_tiny_model(tmp_path / "x", vocab_size=100)
    with pytest.raises(ValueError):
        TinyModel.Params(hidden_size=64, num_heads=3)


def test_stage_writes_model_and_counts_parameters(tmp_path: Path) -> None:
    ctx = StageContext(
        project_root=tmp_path,
        job_id="t",
        stage_name="tiny",
        work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache",
    )
    out = tmp_path / "out"
    out.mkdir()
    result = TinyModel().run(
        TinyModel.Params(hidden_size=32, num_heads=2, vocab_size=400), {}, out, ctx
    )
    assert (out / "model" / "model.safetensors").is_file()
    assert result.metrics["parameters"] == count_parameters(out / "model") > 0
    assert "M parameters" in result.summary


def test_the_cli_builds_one_with_options_from_the_manifest_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from opensem.cli import main

    with pytest.raises(SystemExit) as done:
        main(
            [
                "make-tiny-model",
                str(tmp_path / "m"),
                "--hidden-size",
                "32",
                "--num-heads",
                "2",
                "--layers",
                "1",
                "--vocab-size",
                "600",
            ]
        )
    assert done.value.code == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]) == (
        32,
        2,
        1,
    )
    with pytest.raises(SystemExit) as done:
        main(["make-tiny-model", "--help"])
    shown = capsys.readouterr().out
    assert (
        "--hidden-size INTEGER" in shown
        and "Width of the model.  [default: 64]" in shown
        and "--num-layers, --layers" in shown
    )
    with pytest.raises(SystemExit) as done:
        main(["make-tiny-model", str(tmp_path / "bad"), "--hidden-size", "60"])
    assert done.value.code == 2 and "must be even" in capsys.readouterr().err
