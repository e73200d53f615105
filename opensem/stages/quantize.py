"""Stage kind quantize: the whole model (folded, or fully fine-tuned) in each quantized format asked for.

One node per format (`quantize-gguf`, `quantize-gptq`, ...), so adding a format never redoes the
others. Each writes the artifact under quantized/ and quantize.json: its size against the
unquantized weights (the compression ratio) and the perplexity of both on the same sequences (the
test split, else the golden sets), so a gate can hold back a format that costs too much quality
(`quantized.perplexity_change`). A format that needs a GPU is refused, with what to do, on a
machine without CUDA; calibration records come from the train split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import Field, model_validator

from opensem.core.files import write_json
from opensem.errors import DataError, HardwareIncompatibleError
from opensem.evaluation.items import golden_slots
from opensem.release.quantize import format_union
from opensem.settings.fields import Section, invalid, pick
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import (
    MODEL_LIBRARIES,
    ReleasePart,
    StageContext,
    StageParams,
    StageResult,
    folder_files,
)
from opensem.stages.eval_wiring import eval_sources
from opensem.stages.wiring import Wiring
from opensem.training.config import TrainingConfig

if TYPE_CHECKING:  # a tagged union built at import
    FormatEntry: TypeAlias = Any
else:
    FormatEntry = format_union()
if TYPE_CHECKING:  # a view of some of its fields, with their types
    QuantizeSequences: TypeAlias = TrainingConfig
else:
    QuantizeSequences = pick(TrainingConfig, "max_seq_length", name="QuantizeSequences")
QUANTIZE_FILE = "quantize.json"


class QuantizeConfig(Section):
    formats: list[FormatEntry] = Field(
        min_length=1, description="Each quantized format to ship, with its own options."
    )
    calibration_records: int = Field(
        64, gt=0, le=4096, description="Training records that calibrate gptq and awq."
    )

    @model_validator(mode="after")
    def _each_format_once(self) -> QuantizeConfig:
        names = [entry.format for entry in self.formats]
        if len(set(names)) != len(names):
            raise invalid(f"each format once: {', '.join(names)}")
        return self


class QuantizeParams(StageParams):
    format: FormatEntry
    calibration_records: int
    training: QuantizeSequences = Field(default_factory=QuantizeSequences)


@register
class Quantize:
    name = "quantize"
    libraries = MODEL_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    version = "1"
    Params = QuantizeParams
    sections = (
        section(
            "quantize",
            QuantizeConfig | None,
            None,
            description="Ship quantized copies of the whole model (gguf, gptq, awq); omit for none.",
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """A quantize stage per format, on the folded (or whole) model."""
        config = wiring.section("quantize")
        if config is None:
            return
        model = wiring.channel("model")
        if (
            model is None
            and wiring.section("merge") is None
            and wiring.manifest.method_config.type == "sft"
        ):
            model = wiring.channel("adapter")  # full fine-tuning already gives a whole model
        if model is None and wiring.has_failed("model", "adapter"):
            wiring.fail("quantized")
            return
        if model is None:
            wiring.problem(
                ("quantize",),
                "quantize needs a whole model, and this manifest ships an adapter",
                "add `fold: {}` to fold the adapter into its base first",
            )
            return
        measured = {
            slot: v
            for slot, v in {"test": wiring.channel("split"), **eval_sources(wiring)}.items()
            if slot == "test" or slot.startswith("golden")
        }
        measured = {slot: v for slot, v in measured.items() if v is not None}
        for entry in config.formats:
            inputs = {
                "model": model,
                **measured,
                **(
                    {"train": wiring.channel("train")}
                    if wiring.channel("train") is not None
                    else {}
                ),
            }
            values = {
                "format": entry,
                "calibration_records": config.calibration_records,
                "training": {"max_seq_length": wiring.manifest.training.max_seq_length},
            }
            added = wiring.add(
                self, QuantizeParams.model_validate(values), inputs, name=f"quantize-{entry.format}"
            )
            if added is not None:
                wiring.collect("quantized", added.stage, added)

    def release(self, out_dir: Path, slot: str) -> ReleasePart:
        """The quantized copy and its report, under quantized/<format>/."""
        report = json.loads((out_dir / QUANTIZE_FILE).read_text())
        prefix = f"quantized/{report['format']['format']}/"
        return ReleasePart(
            {
                **folder_files(out_dir / "quantized", prefix),
                f"{prefix}{QUANTIZE_FILE}": out_dir / QUANTIZE_FILE,
            },
            {"quantized": [report]},
        )

    def run(
        self, params: QuantizeParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Quantize the model and measure its perplexity before and after."""
        import torch

        from opensem.release.merge import find_part
        from opensem.release.quantize import FORMATS, size_of
        from opensem.training.methods.base import load_model, load_tokenizer, quiet_libraries

        options = params.format
        fmt = FORMATS.get(options.format)
        if fmt.needs_cuda and not torch.cuda.is_available():
            raise HardwareIncompatibleError(
                f"{options.format} quantization needs a CUDA GPU, and this machine has none",
                hint=(
                    f"build on a GPU machine, or drop {options.format} from quantize.formats here "
                    "(gguf runs anywhere)"
                ),
            )
        model_dir = find_part("model", Path(inputs["model"]), 1.0).path
        with quiet_libraries():
            tokenizer = load_tokenizer(str(model_dir), self.name)
            sequences, measured_on = _sequences(inputs, tokenizer, params.training.max_seq_length)
            calibration = _calibration(inputs, tokenizer, params.calibration_records)
            artifact = fmt.quantize(options, model_dir, out_dir / "quantized", calibration)
            before = _perplexity(load_model(str(model_dir), self.name), sequences, tokenizer)
            after = _perplexity(fmt.load(artifact, model_dir), sequences, tokenizer)
        unquantized, quantized = (
            sum(size_of(p) for p in model_dir.glob("*.safetensors")),
            size_of(artifact),
        )
        report = {
            "format": options.model_dump(),
            "artifact": artifact.relative_to(out_dir).as_posix(),
            "bytes": {"unquantized": unquantized, "quantized": quantized},
            "compression_ratio": round(unquantized / quantized, 4),
            "perplexity": {
                "unquantized": round(before, 4),
                "quantized": round(after, 4),
                "measured_on": measured_on,
            },
            "perplexity_change": round((after - before) / before, 6),
        }
        write_json(out_dir / QUANTIZE_FILE, report)
        summary = (
            f"{options.format}: {quantized / 2**20:.2f} MiB ({report['compression_ratio']:.2f}x "
            f"smaller), perplexity {before:.2f} -> {after:.2f} on {measured_on}"
        )
        return StageResult(summary=summary, metrics=report)


def _sequences(
    inputs: dict[str, Path], tokenizer: Any, max_length: int
) -> tuple[list[list[int]], str]:
    """Token ids to measure perplexity on: the test split's records, else the golden sets' answers."""
    from opensem.evaluation.items import load_golden
    from opensem.evaluation.suite import golden_sequences
    from opensem.training.data import encode_records, load_records

    if "test" in inputs:
        records = load_records(Path(inputs["test"]) / "test.jsonl").records
        texts = [r for r in records if "messages" in r or "text" in r]
        return [
            ids for ids in encode_records(texts, tokenizer, max_length) if len(ids) > 1
        ], "the test split"
    items = [item for expert, path in golden_slots(inputs) for item in load_golden(path, expert)]
    if not items:
        raise DataError("quantize: nothing to measure perplexity on (no test split, no golden set)")
    return golden_sequences(items, tokenizer, max_length), "the golden sets"


def _calibration(inputs: dict[str, Path], tokenizer: Any, count: int) -> list[str]:
    """Rendered training records (chat template applied) that calibrate gptq and awq."""
    from opensem.training.data import load_records, render_text

    if "train" not in inputs:
        return []
    records = [
        r
        for r in load_records(Path(inputs["train"]) / "train.jsonl").records
        if "messages" in r or "text" in r
    ]
    return [render_text(record, tokenizer) for record in records[:count]]


def _perplexity(model: Any, sequences: list[list[int]], tokenizer: Any) -> float:
    import math

    from opensem.core.stage import silent_progress
    from opensem.evaluation.suite import token_nll

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total, count = token_nll(model, sequences, pad, 8, silent_progress("", None))
    return math.exp(total / count)
