"""The hardware preflight with simulated devices: caps, estimates, the preference floor, CPU rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.errors import HardwareIncompatibleError
from opensem.training.hardware import (
    Device,
    HardwarePlan,
    MethodProfile,
    ModelShape,
    check_hardware,
    classify_card,
    estimate_memory,
    model_shape,
    query_devices,
)

LLAMA_8B = ModelShape.from_config(
    {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    }
)
LLAMA_3B = ModelShape.from_config(
    {
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 28,
        "num_attention_heads": 24,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": True,
    }
)
TINY = ModelShape(params=338_240, hidden=64, layers=2, intermediate=128, vocab=2000, kv_dim=64)
LORA = MethodProfile("lora")
ORPO = MethodProfile("orpo", paired=True, vram_floor_gb=24.0)
DPO = MethodProfile("dpo", paired=True, vram_floor_gb=24.0)
QLORA = MethodProfile("qlora", quantized=True)
SFT = MethodProfile("sft", full=True)

RTX_4080 = Device("NVIDIA GeForce RTX 4080", total_gb=15.6, free_gb=15.2)
RTX_4090 = Device("NVIDIA GeForce RTX 4090", total_gb=23.99, free_gb=23.5)
H100 = Device("NVIDIA H100 80GB HBM3", total_gb=79.2, free_gb=78.6)


def plan(
    method: MethodProfile = LORA, shape: ModelShape | None = LLAMA_8B, **kwargs: object
) -> HardwarePlan:
    return HardwarePlan(
        method=method,
        shape=shape,
        seq_len=kwargs.pop("seq_len", 512),
        batch_size=kwargs.pop("batch_size", 4),
        rank=kwargs.pop("rank", 16),
        **kwargs,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("NVIDIA GeForce RTX 4090", "consumer"),
        ("NVIDIA GeForce RTX 3090 Ti", "consumer"),
        ("NVIDIA TITAN RTX", "consumer"),
        ("AMD Radeon RX 7900 XTX", "consumer"),
        ("NVIDIA A100-SXM4-80GB", "datacenter"),
        ("NVIDIA H100 80GB HBM3", "datacenter"),
        ("NVIDIA H200", "datacenter"),
        ("NVIDIA L40S", "datacenter"),
        ("NVIDIA A10G", "datacenter"),
        ("Tesla T4", "datacenter"),
        ("NVIDIA RTX A6000", "datacenter"),
        ("NVIDIA RTX 6000 Ada Generation", "datacenter"),
        ("AMD Instinct MI300X", "datacenter"),
        ("Some Future Card", "consumer"),
    ],
)
def test_cards_are_classified(name: str, kind: str) -> None:
    assert classify_card(name) == kind


def test_orpo_on_a_16_gb_card_fails_fast_with_the_message() -> None:
    with pytest.raises(HardwareIncompatibleError) as info:
        check_hardware(plan(ORPO), [RTX_4080])
    assert (
        info.value.message
        == "Insufficient VRAM for ORPO. Use gradient checkpointing or upgrade node."
    )
    assert (
        "NVIDIA GeForce RTX 4080 has 15.6 GB" in info.value.hint
        and "gradient_checkpointing" in info.value.hint
    )
    with pytest.raises(
        HardwareIncompatibleError, match="Insufficient VRAM for DPO. Use gradient checkpointing"
    ):
        check_hardware(plan(DPO), [RTX_4080])


def test_gradient_checkpointing_lifts_the_preference_floor_when_the_estimate_fits() -> None:
    report = check_hardware(
        plan(ORPO, shape=LLAMA_3B, seq_len=256, batch_size=2, gradient_checkpointing=True),
        [RTX_4080],
    )
    assert (
        report.gradient_checkpointing
        and report.estimate is not None
        and report.estimate.total_gb < report.budget_gb
    )
    # allowed but not enough: the estimate still refuses it, naming what it needs
    with pytest.raises(
        HardwareIncompatibleError,
        match=r"Insufficient VRAM for ORPO: about \d+\.\d GB needed \(weights",
    ):
        check_hardware(plan(ORPO, batch_size=8, gradient_checkpointing="auto"), [RTX_4080])


def test_the_floor_is_for_real_models_a_tiny_one_goes_by_its_estimate() -> None:
    report = check_hardware(plan(ORPO, shape=TINY), [RTX_4080])
    assert report.device == "cuda" and not report.warnings


def test_a_non_strict_check_warns_and_passes() -> None:
    report = check_hardware(plan(ORPO, strict=False), [RTX_4080])
    assert len(report.warnings) == 2
    assert report.warnings[0].startswith(
        "Insufficient VRAM for ORPO. Use gradient checkpointing or upgrade node."
    )
    assert all("trying anyway" in warning for warning in report.warnings)


def test_an_80_gb_datacenter_card_passes_with_no_cap() -> None:
    report = check_hardware(plan(LORA), [H100])
    assert report.card == H100 and report.card.kind == "datacenter"
    assert report.cap_gb is None and report.budget_gb == H100.free_gb
    assert (
        report.estimate is not None
        and 25 < report.estimate.total_gb < 60
        and not report.gradient_checkpointing
    )
    assert "whole card" in report.summary(
        "lora"
    ) and "gradient checkpointing off" in report.summary("lora")
    check_hardware(plan(ORPO), [H100])  # the preference floor does not touch an 80 GB card


def test_a_24_gb_consumer_card_is_capped_at_22_gb() -> None:
    report = check_hardware(plan(QLORA, gradient_checkpointing=True), [RTX_4090])
    assert report.card is not None and report.card.kind == "consumer"
    assert report.cap_gb == pytest.approx(21.99) and report.budget_gb == pytest.approx(21.99)
    assert "capped at 22.0 GB" in report.summary("qlora")
    assert (
        check_hardware(plan(QLORA, max_vram_gb=20, gradient_checkpointing=True), [RTX_4090]).cap_gb
        == 20
    )
    roomy = check_hardware(plan(QLORA, max_vram_gb=40, gradient_checkpointing=True), [RTX_4090])
    assert roomy.cap_gb == pytest.approx(23.99)  # never above the card


def test_auto_checkpointing_switches_on_only_when_the_estimate_needs_it() -> None:
    tight = check_hardware(plan(LORA, gradient_checkpointing="auto"), [RTX_4090])
    assert (
        tight.gradient_checkpointing
        and tight.estimate is not None
        and tight.estimate.total_gb <= tight.budget_gb
    )
    roomy = check_hardware(plan(LORA, gradient_checkpointing="auto"), [H100])
    assert not roomy.gradient_checkpointing
    with pytest.raises(HardwareIncompatibleError, match="Insufficient VRAM for LORA"):
        check_hardware(plan(LORA), [RTX_4090])  # off, 8B in 16 bits with full activations: ~37 GB


def test_full_fine_tuning_is_judged_on_its_optimizer_state() -> None:
    full = estimate_memory(LLAMA_8B, SFT, 512, 4, 16, checkpointing=True, gpu=True)
    lora = estimate_memory(LLAMA_8B, LORA, 512, 4, 16, checkpointing=True, gpu=True)
    assert full.training_gb > 80 > lora.training_gb * 50 and full.weights_gb == pytest.approx(
        2 * lora.weights_gb
    )
    with pytest.raises(HardwareIncompatibleError, match="Insufficient VRAM for SFT"):
        check_hardware(plan(SFT, gradient_checkpointing=True), [H100])


def test_the_tightest_card_of_a_launch_decides_and_too_many_processes_fail() -> None:
    busy = Device("NVIDIA H100 80GB HBM3", 79.2, 30.0, index=1)
    assert (
        check_hardware(plan(LORA, gradient_checkpointing="auto", processes=2), [H100, busy]).card
        == busy
    )
    with pytest.raises(
        HardwareIncompatibleError,
        match="3 training processes asked for, and this machine has 2 GPUs",
    ):
        check_hardware(plan(LORA, processes=3), [H100, busy])
    single = check_hardware(plan(LORA), [H100, busy])
    assert any("compute.launcher: accelerate" in warning for warning in single.warnings)


def test_without_a_gpu_small_models_train_on_the_cpu() -> None:
    report = check_hardware(plan(LORA, shape=TINY), [], ram_gb=16)
    assert (report.device, report.card, report.cap_gb, report.budget_gb) == ("cpu", None, None, 16)
    assert report.estimate is not None and report.estimate.total_gb < 1 and not report.warnings
    assert report.summary("lora").startswith("hardware: no CUDA GPU, training on the CPU")
    big = check_hardware(plan(LORA, strict=False), [], ram_gb=16)
    assert any("Insufficient memory for LORA on the CPU" in w for w in big.warnings)
    assert any("8.0B-parameter model on a CPU will take very long" in w for w in big.warnings)


def test_qlora_without_cuda_is_an_error_unless_the_fallback_is_allowed() -> None:
    with pytest.raises(
        HardwareIncompatibleError, match="qlora needs a CUDA GPU for its 4-bit base model"
    ) as info:
        check_hardware(plan(QLORA, shape=TINY, strict=False), [], ram_gb=16)
    assert "compute.allow_cpu_fallback: true" in info.value.hint
    report = check_hardware(plan(QLORA, shape=TINY, allow_cpu_fallback=True), [], ram_gb=16)
    assert report.cpu_fallback and report.warnings == (
        "qlora without CUDA: training plain LoRA in float32 on the CPU (compute.allow_cpu_fallback)",
    )


def test_an_unknown_model_size_skips_the_estimate_but_not_the_floor() -> None:
    report = check_hardware(plan(LORA, shape=None), [H100])
    assert report.estimate is None and "memory estimate skipped" in report.warnings[0]
    with pytest.raises(HardwareIncompatibleError, match="Insufficient VRAM for ORPO."):
        check_hardware(plan(ORPO, shape=None), [RTX_4080])


def test_model_shape_reads_config_json_and_counts_parameters_exactly(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    shape = model_shape(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert shape is not None and shape.params == sum(p.numel() for p in model.parameters())
    assert LLAMA_8B is not None and LLAMA_8B.params == 8_030_261_248  # Llama 3 8B as published
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mystery"}))
    assert model_shape(str(tmp_path)) is None
    assert model_shape(str(tmp_path / "absent")) is None


def test_this_machine_has_no_cuda_devices() -> None:
    import torch

    assert (
        query_devices() == []
        if not torch.cuda.is_available()
        else all(d.total_gb > 0 for d in query_devices())
    )
