"""GPTQ and AWQ through llm-compressor: integer weights in groups, calibrated on the manifest's
training records, saved as compressed-tensors safetensors that transformers and vLLM load.

llm-compressor pins an older transformers (like unsloth), so it lives in the `gpu` extra; it is
imported only inside compress(), in a CUDA run. Both formats are members of one class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, create_model

from opensem.errors import StageError
from opensem.release.quantize import FormatOptions, register_format


class CompressedOptions(FormatOptions):
    """What GPTQ and AWQ share; each narrows `format` to its name."""

    bits: Literal[4, 8] = Field(4, description="Bits per weight (gptq, awq).")
    group_size: int = Field(
        128,
        gt=0,
        description="Weights sharing one scale (gptq, awq); smaller groups are more accurate and larger.",
    )


class CompressedFormat:
    """One llm-compressor algorithm as a quantization format; the family differs only in its name."""

    name: ClassVar[str]
    Options: ClassVar[type[CompressedOptions]]
    needs_cuda: ClassVar[bool] = True

    def quantize(
        self, options: CompressedOptions, model_dir: Path, out_dir: Path, calibration: list[str]
    ) -> Path:
        """Compress the model with llm-compressor into out_dir."""
        return compress(
            self.name, options.bits, options.group_size, model_dir, out_dir, calibration
        )

    def load(self, artifact: Path, model_dir: Path) -> Any:
        """The compressed model, for measuring its perplexity."""
        return load(artifact)


def _member(name: str, description: str) -> type[CompressedFormat]:
    options = create_model(
        f"{name.title()}Options",
        __base__=CompressedOptions,
        format=(  # type: ignore[arg-type]
            Literal[name],
            Field(
                name,
                description=f"{name}: {description} (llm-compressor; needs CUDA and the gpu extra).",
            ),
        ),
    )
    member = type(
        name.title(),
        (CompressedFormat,),
        {"name": name, "Options": options, "__module__": __name__},
    )
    return register_format(member)


Gptq = _member("gptq", "GPTQ integer weights")
Awq = _member("awq", "activation-aware integer weights")


def compress(
    algorithm: str,
    bits: int,
    group_size: int,
    model_dir: Path,
    out_dir: Path,
    calibration: list[str],
) -> Path:
    """Quantize model_dir's Linear layers (not the output head) with GPTQ or AWQ into out_dir."""
    try:
        from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
        from datasets import Dataset
        from llmcompressor import oneshot
        from llmcompressor.modifiers.awq import AWQModifier
        from llmcompressor.modifiers.quantization import GPTQModifier
    except ImportError as exc:
        raise StageError(
            f"{algorithm}: llm-compressor is not installed ({exc})",
            hint="pip install 'opensem[gpu]' on a CUDA machine",
        ) from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not calibration:
        raise StageError(
            f"{algorithm}: no calibration records",
            hint="quantize.calibration_records takes them from the train split",
        )
    weights = QuantizationArgs(
        num_bits=bits,
        type="int",
        symmetric=algorithm == "gptq",
        strategy="group",
        group_size=group_size,
    )
    groups = {"group_0": QuantizationScheme(targets=["Linear"], weights=weights)}
    modifier = (GPTQModifier if algorithm == "gptq" else AWQModifier)(
        config_groups=groups, ignore=["lm_head"]
    )
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype="auto", device_map="auto")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    dataset = Dataset.from_dict({"text": calibration})
    oneshot(
        model=model,
        tokenizer=tokenizer,
        dataset=dataset,
        recipe=modifier,
        num_calibration_samples=len(calibration),
        output_dir=str(out_dir),
    )
    return out_dir


def load(artifact: Path) -> Any:
    """A compressed checkpoint loaded through transformers."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(artifact), device_map="auto")
