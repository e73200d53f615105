"""AWQ quantization through llm-compressor (opensem.release.quantize.compressed); CUDA only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from opensem.release.quantize import FormatOptions, register_format


class AwqOptions(FormatOptions):
    format: Literal["awq"] = Field("awq", description="awq: activation-aware integer weights (llm-compressor; needs CUDA and the gpu extra).")
    bits: Literal[4, 8] = Field(4, description="Bits per weight (gptq, awq).")
    group_size: int = Field(128, gt=0, description="Weights sharing one scale (gptq, awq); smaller groups are more accurate and larger.")


@register_format
class Awq:
    name = "awq"
    Options = AwqOptions
    needs_cuda: ClassVar[bool] = True

    def quantize(self, options: AwqOptions, model_dir: Path, out_dir: Path, calibration: list[str]) -> Path:
        from opensem.release.quantize.compressed import compress

        return compress("awq", options.bits, options.group_size, model_dir, out_dir, calibration)

    def load(self, artifact: Path, model_dir: Path) -> Any:
        from opensem.release.quantize.compressed import load

        return load(artifact)
