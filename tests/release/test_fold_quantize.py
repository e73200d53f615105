"""Folding an adapter into its base, and quantizing the whole model: loadable, measured, honest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.errors import HardwareIncompatibleError
from opensem.release.fold import fold
from opensem.release.quantize import FORMATS, size_of
from opensem.stages.base import StageContext
from opensem.stages.quantize import Quantize, QuantizeParams

IDS = [[1, 40, 50, 60, 70, 80, 90, 100]]


def logits(model, ids=IDS):  # type: ignore[no-untyped-def]
    import torch

    with torch.inference_mode():
        return model(torch.tensor(ids)).logits


def test_a_folded_adapter_loads_without_peft_and_gives_base_plus_adapter(
    adapters: dict[str, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    details = fold(str(tiny_model_dir), adapters["a"].parent, tmp_path / "folded", "auto")
    assert (
        details == {"folded": True, "dtype": "float32", "parameters": details["parameters"]}
        and details["parameters"] > 300_000
    )
    files = {p.name for p in (tmp_path / "folded").iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= files
    folded = AutoModelForCausalLM.from_pretrained(tmp_path / "folded")  # no peft involved
    assert not hasattr(folded, "peft_config")
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
        str(adapters["a"]),
    )
    assert torch.allclose(logits(folded), logits(adapted), atol=1e-5)
    assert not torch.allclose(
        logits(folded), logits(AutoModelForCausalLM.from_pretrained(tiny_model_dir)), atol=1e-3
    )
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "folded")
    assert tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    ).startswith("<|bos|><|user|>")
    half = fold(str(tiny_model_dir), adapters["a"].parent, tmp_path / "half", "float16")
    assert (
        half["dtype"] == "float16"
        and size_of(tmp_path / "half" / "model.safetensors")
        < size_of(tmp_path / "folded" / "model.safetensors") * 0.6
    )


def test_gguf_q8_is_a_third_of_the_size_and_loads_back_close(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    gguf = FORMATS.get("gguf")
    artifact = gguf.quantize(gguf.Options(type="q8_0"), tiny_model_dir, tmp_path / "q", [])
    assert artifact.name == "model-q8_0.gguf" and artifact.read_bytes()[:4] == b"GGUF"
    assert (
        size_of(tiny_model_dir / "model.safetensors") / size_of(artifact) > 3.0
    )  # float32 weights to 8 bits
    quantized, original = (
        gguf.load(artifact, tiny_model_dir),
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
    )
    difference = (logits(quantized) - logits(original)).abs().max()
    assert 0 < float(difference) < 0.1


def test_the_quantize_stage_measures_and_a_gpu_format_is_refused_without_cuda(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    split = tmp_path / "split"
    split.mkdir()
    chats = [
        {
            "id": str(i),
            "source": "t",
            "messages": [
                {"role": "user", "content": f"Tell me about water {i}."},
                {"role": "assistant", "content": "Water when the soil is dry."},
            ],
        }
        for i in range(4)
    ]
    (split / "test.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    (split / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    ctx = StageContext(
        project_root=tmp_path,
        job_id="t",
        stage_name="quantize",
        work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache",
    )
    inputs = {"model": tiny_model_dir.parent, "test": split, "train": split}
    out = tmp_path / "out"
    out.mkdir()
    result = Quantize().run(
        QuantizeParams.model_validate({"format": {"format": "gguf"}, "calibration_records": 2}),
        inputs,
        out,
        ctx,
    )
    report = json.loads((out / "quantize.json").read_text())
    assert report["artifact"] == "quantized/model-q8_0.gguf" and report["compression_ratio"] > 3
    assert (
        report["perplexity"]["measured_on"] == "the test split"
        and abs(report["perplexity_change"]) < 0.01
    )
    assert result.summary.startswith("gguf: ") and "smaller" in result.summary
    with pytest.raises(
        HardwareIncompatibleError, match="gptq quantization needs a CUDA GPU"
    ) as info:
        Quantize().run(
            QuantizeParams.model_validate({"format": {"format": "gptq"}, "calibration_records": 2}),
            inputs,
            tmp_path,
            ctx,
        )
    assert "gguf runs anywhere" in info.value.hint


def test_the_gpu_formats_import_nothing_until_they_run() -> None:
    import subprocess
    import sys

    code = (
        "import sys, opensem.release.quantize.compressed, "
        "opensem.stages.quantize\nprint('llmcompressor' in sys.modules, 'torch' in sys.modules)"
    )
    assert subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split() == ["False", "False"]
