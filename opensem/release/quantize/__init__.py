"""Quantization formats: each registering itself with its own options (gguf; gptq and awq, one family).

A format turns a whole model folder (folded, or fully fine-tuned) into a quantized artifact and
loads that artifact back as a torch model, so the quantize stage can measure what quantizing cost
(perplexity before and after, on the same sequences). `quantize.formats` in a manifest is a list
of one format's options each, chosen by `format` (a union built from this registry).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

from opensem.plugins import Registry
from opensem.settings.fields import Section, tagged_union


class FormatOptions(Section):
    """Base of each format's options; the format narrows `format` to its name."""

    format: str


class QuantizeFormat(Protocol):
    name: ClassVar[str]
    Options: ClassVar[type[FormatOptions]]
    needs_cuda: ClassVar[bool]  # refused with a clear error on a machine without CUDA

    def quantize(
        self, options: Any, model_dir: Path, out_dir: Path, calibration: list[str]
    ) -> Path:
        """Write the quantized artifact into out_dir and return it (a file or a folder)."""
        ...

    def load(self, artifact: Path, model_dir: Path) -> Any:
        """The quantized artifact as a torch causal LM, for measuring it."""
        ...


FORMATS: Registry[QuantizeFormat] = Registry(
    "quantization format", "opensem.release.quantize", ("gguf", "compressed")
)
register_format = FORMATS.register


def format_union() -> Any:
    """One entry of `quantize.formats`: a format's options, chosen by `format` (gguf when left out)."""
    return tagged_union([f.Options for f in FORMATS.all()], "format", "gguf")


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file below a folder."""
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
