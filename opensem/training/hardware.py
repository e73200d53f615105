"""Hardware preflight: decide, before any model loads, whether a training run can fit this machine.

A run that dies of out-of-memory after an hour of loading and tokenizing costs the hour; this
check costs a second. It reads the GPUs (torch.cuda.mem_get_info), tells consumer cards (capped:
they also drive a display) from datacenter cards (used whole), estimates what the method, model
size, sequence length and batch need, and either passes, warns, or raises HardwareIncompatibleError
(with method_config.strict_hardware_check: false it warns instead). The device list can be passed
in, so every decision here is testable with simulated cards on a machine without one.

Sizes are GiB (2**30 bytes), written "GB" in messages as the cards' spec sheets do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from opensem.errors import HardwareIncompatibleError
from opensem.training.memory import (
    GIB,
    MemoryEstimate,
    MethodProfile,
    ModelShape,
    estimate_memory,
    model_shape,
)

__all__ = [
    "Device",
    "HardwarePlan",
    "HardwareReport",
    "MemoryEstimate",
    "MethodProfile",
    "ModelShape",
    "apply_vram_cap",
    "check_hardware",
    "classify_card",
    "model_shape",
    "query_devices",
    "system_ram_gb",
]

CONSUMER_HEADROOM_GB = 2.0  # left to the display and the desktop on a consumer card: 22 of 24 GB
FLOOR_TOLERANCE = 0.97  # a "24 GB" card reports a little less than 24 GiB
FLOOR_MIN_PARAMS = (
    1e9  # the preference-method floor is for real models; tiny ones go by the estimate
)
SLOW_CPU_PARAMS = 3e9
_CONSUMER = re.compile(
    r"geforce|titan|radeon rx|\brtx\s?[2-5]0[5-9]0\b|\bgtx\b|\barc a", re.IGNORECASE
)
_DATACENTER = re.compile(
    r"\b([abgh]\d{2,3}[a-z]?|gh200|gb200|l40s?|l4|t4|v100|p100|k80|mi\d{3}[a-z]*|instinct|rtx\s?(pro\s?)?[a-z]?\d{4}|quadro|tesla)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Device:
    """One GPU as torch reports it."""

    name: str
    total_gb: float
    free_gb: float
    index: int = 0

    @property
    def kind(self) -> str:
        """The card's class (datacenter, consumer, ...) by its name."""
        return classify_card(self.name)


def classify_card(name: str) -> str:
    """consumer (GeForce, RTX xx90, Titan, Radeon RX) or datacenter (A100, H100, L40, A10, workstation RTX A/Ada).

    An unknown name counts as consumer: its cap only costs 2 GB, an uncapped display card can crash the desktop.
    """
    if _CONSUMER.search(name):
        return "consumer"
    return "datacenter" if _DATACENTER.search(name) else "consumer"


@dataclass(frozen=True)
class HardwarePlan:
    """What a run will ask of the machine, and the manifest's hardware policy."""

    method: MethodProfile
    shape: ModelShape | None
    seq_len: int
    batch_size: int
    rank: int  # the adapter's rank (from the method's options); 0 when the whole model trains
    gradient_checkpointing: bool | str = False  # True, False or "auto"
    strict: bool = True
    max_vram_gb: float | None = None
    allow_cpu_fallback: bool = False
    processes: int = 1  # one GPU per process under a launcher


@dataclass(frozen=True)
class HardwareReport:
    """The preflight's verdict: where the run trains, with what cap, and what it was warned about."""

    device: str  # cuda | cpu
    budget_gb: float  # memory the run may use on its tightest device (RAM on a CPU)
    card: Device | None = None
    cap_gb: float | None = None  # per-process VRAM cap (consumer cards); None: the whole card
    estimate: MemoryEstimate | None = None
    gradient_checkpointing: bool = False
    cpu_fallback: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def summary(self, method: str) -> str:
        """One line: the memory the method needs against what the device has."""
        need = (
            f"needs about {self.estimate.total_gb:.1f} GB"
            if self.estimate
            else "model size unknown, no estimate"
        )
        checkpointing = "on" if self.gradient_checkpointing else "off"
        if self.card is None:
            return f"hardware: no CUDA GPU, training on the CPU ({self.budget_gb:.0f} GB RAM); {method} {need}"
        cap = f", capped at {self.cap_gb:.1f} GB" if self.cap_gb is not None else ", whole card"
        where = f"{self.card.name} ({self.card.kind}, {self.card.total_gb:.1f} GB, {self.card.free_gb:.1f} free{cap})"
        return (
            f"hardware: {where}; {method} {need} of {self.budget_gb:.1f} usable; gradient "
            f"checkpointing {checkpointing}"
        )


def query_devices() -> list[Device]:
    """The CUDA devices of this machine with their free and total memory; [] without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        devices.append(Device(torch.cuda.get_device_name(index), total / GIB, free / GIB, index))
    return devices


def system_ram_gb() -> float:
    """Memory available to a CPU run."""
    try:
        import psutil

        return float(psutil.virtual_memory().available) / GIB
    except ImportError:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) / GIB


def check_hardware(
    plan: HardwarePlan, devices: Sequence[Device] | None = None, ram_gb: float | None = None
) -> HardwareReport:
    """Pass (with warnings), or raise HardwareIncompatibleError, for plan on these devices (default: this machine's)."""
    found = query_devices() if devices is None else list(devices)
    if not found:
        return _check_cpu(plan, system_ram_gb() if ram_gb is None else ram_gb)
    if plan.processes > len(found):
        raise HardwareIncompatibleError(
            f"{plan.processes} training processes asked for, and this machine has {len(found)} "
            f"GPU{'s' if len(found) != 1 else ''}",
            hint="lower compute.num_processes, or use an accelerate_config that spans several machines",
        )
    card = min(found[: plan.processes], key=lambda d: d.free_gb)
    cap = None
    if card.kind == "consumer":
        cap = min(
            card.total_gb,
            plan.max_vram_gb
            if plan.max_vram_gb is not None
            else card.total_gb - CONSUMER_HEADROOM_GB,
        )
    budget = min(card.free_gb, cap) if cap is not None else card.free_gb
    plain, saving = _estimates(plan, gpu=True)
    checkpointing = plan.gradient_checkpointing is True or (
        plan.gradient_checkpointing == "auto" and plain is not None and plain.total_gb > budget
    )
    estimate = saving if checkpointing else plain
    problems: list[str] = []
    floor = plan.method.vram_floor_gb
    big = plan.shape is None or plan.shape.params >= FLOOR_MIN_PARAMS
    if (
        floor
        and big
        and card.total_gb < floor * FLOOR_TOLERANCE
        and plan.gradient_checkpointing is False
    ):
        problems.append(
            f"Insufficient VRAM for {plan.method.name.upper()}. Use gradient checkpointing or upgrade node."
        )
    if estimate is not None and estimate.total_gb > budget:
        problems.append(
            f"Insufficient VRAM for {plan.method.name.upper()}: about {estimate.total_gb:.1f} GB needed "
            f"({estimate.breakdown()}), {budget:.1f} GB usable on {card.name}"
        )
    hint = (
        f"{card.name} has {card.total_gb:.1f} GB ({card.free_gb:.1f} "
        f"free{f', capped at {cap:.1f}' if cap is not None else ''}). "
        "Set compute.gradient_checkpointing: true (or auto), lower compute.batch_size or training.max_seq_length, "
        "use qlora, or a larger card; method_config.strict_hardware_check: false tries anyway"
    )
    warnings = _verdict(plan, problems, hint)
    if plan.processes == 1 and len(found) > 1:
        warnings.append(
            f"{len(found)} GPUs found and one is used; compute.launcher: accelerate trains on all of them"
        )
    if plan.shape is None:
        warnings.append("model size unknown (no readable config.json): memory estimate skipped")
    return HardwareReport(
        "cuda", budget, card, cap, estimate, checkpointing, False, tuple(warnings)
    )


def _check_cpu(plan: HardwarePlan, ram_gb: float) -> HardwareReport:
    """No GPU: hf on the CPU in float32, fine for small models; 4-bit qlora only with the fallback allowed."""
    warnings: list[str] = []
    if plan.method.quantized:
        if not plan.allow_cpu_fallback:
            raise HardwareIncompatibleError(
                f"{plan.method.name} needs a CUDA GPU for its 4-bit base model, and this machine has none",
                hint=(
                    "train on a GPU machine, use method lora, or set compute.allow_cpu_fallback: "
                    "true to train plain LoRA on the CPU"
                ),
            )
        warnings.append(
            f"{plan.method.name} without CUDA: training plain LoRA in float32 on the CPU (compute.allow_cpu_fallback)"
        )
    profile = replace(plan.method, quantized=False)
    plain, saving = _estimates(replace(plan, method=profile), gpu=False)
    checkpointing = plan.gradient_checkpointing is True or (
        plan.gradient_checkpointing == "auto" and plain is not None and plain.total_gb > ram_gb
    )
    estimate = saving if checkpointing else plain
    problems = []
    if estimate is not None and estimate.total_gb > ram_gb:
        problems.append(
            f"Insufficient memory for {plan.method.name.upper()} on the CPU: about {estimate.total_gb:.1f} GB "
            f"needed ({estimate.breakdown()}), {ram_gb:.1f} GB available"
        )
    warnings += _verdict(
        plan, problems, "train on a GPU machine, or a smaller model, batch or sequence length"
    )
    if plan.shape is not None and plan.shape.params > SLOW_CPU_PARAMS:
        warnings.append(
            f"training a {plan.shape.billions:.1f}B-parameter model on a CPU will take very long; a GPU machine is "
            "the place for it"
        )
    return HardwareReport(
        "cpu", ram_gb, None, None, estimate, checkpointing, plan.method.quantized, tuple(warnings)
    )


def _estimates(
    plan: HardwarePlan, gpu: bool
) -> tuple[MemoryEstimate | None, MemoryEstimate | None]:
    if plan.shape is None:
        return None, None
    args = (plan.shape, plan.method, plan.seq_len, plan.batch_size, plan.rank)
    return estimate_memory(*args, checkpointing=False, gpu=gpu), estimate_memory(
        *args, checkpointing=True, gpu=gpu
    )


def _verdict(plan: HardwarePlan, problems: list[str], hint: str) -> list[str]:
    """Raise on the problems when strict; otherwise return them as warnings."""
    if problems and plan.strict:
        raise HardwareIncompatibleError(problems[0], hint=" ".join([*problems[1:], hint]))
    return [f"{problem} (strict_hardware_check is off: trying anyway)" for problem in problems]


def apply_vram_cap(cap_gb: float, index: int | None = None) -> None:
    """Hold this process to cap_gb of its GPU; the allocator raises out-of-memory beyond it."""
    import torch

    if index is None:  # under a launcher each process owns the GPU of its local rank
        index = int(os.environ.get("LOCAL_RANK", torch.cuda.current_device()))
    total = torch.cuda.get_device_properties(index).total_memory / GIB
    if cap_gb < total:
        torch.cuda.set_per_process_memory_fraction(cap_gb / total, index)
