"""Stage kind evaluate: held-out token loss and perplexity of the base model and of base+adapter.

Both models score the same token sequences, rendered by the same code the train stage used
(opensem.methods.data.encode_records), so the difference is the adapter's doing and nothing else.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.errors import DataError, Location, StageError
from opensem.methods.base import SFT_SHAPES
from opensem.stages import register
from opensem.stages.base import Progress, StageContext, StageParams, StageResult

DIGITS = 6  # rounding of reported floats, so the report's bytes are stable


def _batches(sequences: list[list[int]], size: int) -> list[list[list[int]]]:
    return [sequences[i : i + size] for i in range(0, len(sequences), size)]


def token_nll(model: Any, batches: list[list[list[int]]], pad_id: int, bar: Progress) -> tuple[float, int]:
    """Summed next-token negative log-likelihood over every predicted token, and how many there were."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in batches:
            width = max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                mask[row, : len(ids)] = 1
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
            targets = input_ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total += float(loss)
            count += int((targets != -100).sum())
            bar.advance()
    return total, count


def _scores(total: float, count: int) -> dict[str, float]:
    loss = total / count
    return {"loss": round(loss, DIGITS), "perplexity": round(math.exp(loss), DIGITS)}


@register
class Evaluate:
    name = "evaluate"
    version = "1"

    class Params(StageParams):
        max_seq_length: int = Field(512, gt=1)
        batch_size: int = Field(8, gt=0)
        base_model: str | None = Field(None, description="hub id or path; used only without a 'base' input")
        max_records: int | None = Field(None, gt=0)

    def run(self, params: Params, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        """Score base and base+adapter on the test split; write report.json."""
        from opensem.methods.base import load_causal_lm, load_tokenizer, quiet_libraries, resolve_base_model
        from opensem.methods.data import check_shapes, encode_records, load_records

        records = load_records(_input_file(inputs, "test", "test.jsonl")).head(params.max_records)
        check_shapes(records, SFT_SHAPES, self.name)
        adapter_dir = _adapter_dir(inputs)
        model_path = resolve_base_model(inputs, params.base_model, self.name)

        with quiet_libraries():
            import torch
            from peft import PeftModel

            # The adapter carries the tokenizer it was trained with (chat template included).
            has_tokenizer = (adapter_dir / "tokenizer_config.json").is_file()
            tokenizer = load_tokenizer(str(adapter_dir) if has_tokenizer else model_path, self.name)
            sequences = [ids for ids in encode_records(records, tokenizer, params.max_seq_length) if len(ids) > 1]
            if not sequences:
                raise DataError("evaluate: no test record has two or more tokens to score", Location(file=str(records.path)))
            batches = _batches(sequences, params.batch_size)
            bar = ctx.progress("evaluating", 2 * len(batches))
            try:
                model = load_causal_lm(model_path, self.name)
                if torch.cuda.is_available():
                    model = model.to("cuda")
                base_total, count = token_nll(model, batches, tokenizer.pad_token_id, bar)
                tuned = PeftModel.from_pretrained(model, str(adapter_dir))
                tuned_total, _ = token_nll(tuned, batches, tokenizer.pad_token_id, bar)
            finally:
                bar.close()

        base, after = _scores(base_total, count), _scores(tuned_total, count)
        delta = {key: round(after[key] - base[key], DIGITS) for key in ("loss", "perplexity")}
        report = {"records": len(records), "tokens": count, "base": base, "tuned": after, "delta": delta}
        (out_dir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        change = 100.0 * delta["perplexity"] / base["perplexity"]
        return StageResult(
            summary=f"perplexity {base['perplexity']:.1f} -> {after['perplexity']:.1f} ({change:+.1f}%)",
            metrics={
                "records": len(records),
                "tokens": count,
                "base_loss": base["loss"],
                "base_perplexity": base["perplexity"],
                "tuned_loss": after["loss"],
                "tuned_perplexity": after["perplexity"],
                "delta_loss": delta["loss"],
                "delta_perplexity": delta["perplexity"],
            },
        )


def _input_file(inputs: dict[str, Path], slot: str, name: str) -> Path:
    if slot not in inputs:
        raise DataError(f"evaluate: no {slot!r} input", hint="wire the split stage's output into it")
    path = Path(inputs[slot])
    path = path / name if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"evaluate: the {slot} input has no {name}", Location(file=str(path)), hint="check the split stage")
    return path


def _adapter_dir(inputs: dict[str, Path]) -> Path:
    if "adapter" not in inputs:
        raise StageError("evaluate: no 'adapter' input", hint="wire the train stage's output into the 'adapter' slot")
    root = Path(inputs["adapter"])
    adapter = root / "adapter" if (root / "adapter").is_dir() else root
    if not (adapter / "adapter_config.json").is_file():
        raise StageError("evaluate: the adapter input holds no adapter_config.json", Location(file=str(adapter)))
    return adapter
