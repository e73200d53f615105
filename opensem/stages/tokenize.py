"""Stage kind tokenize: the training records as token ids, once per tokenizer and settings.

Its lot is keyed by the train split's bytes, the tokenizer's files (the base model's folder, or its
hub id), max_seq_length, packing, loss_on, the persona and the record shape the method trains on,
and nothing else: changing the learning rate or the rank retrains from the stored tokens, while a
new tokenizer, chat template or sequence length tokenizes again. The test split is tokenized here
too, for evaluate's perplexity. Every local method trains on its ids: the supervised ones (sft,
lora, dora, qlora, distill) on one sequence per record (or packed), dpo and orpo on prompt,
chosen and rejected ids, kto on prompt and completion ids with their labels, split where trl
splits them (opensem.training.paired_tokens), so trl's own tokenization is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import Field

from opensem.data.persona import persona_field, records_with_persona
from opensem.settings.fields import pick, run_setting, unset_keeps_lots
from opensem.stages import register
from opensem.stages.base import TRAINING_LIBRARIES, StageContext, StageParams, StageResult
from opensem.stages.wiring import Wiring
from opensem.training.config import TrainingConfig
from opensem.training.methods.base import FEEDBACK_SHAPES, PREFERENCE_SHAPES, SFT_SHAPES

SHAPES = {"sft": SFT_SHAPES, "preference": PREFERENCE_SHAPES, "feedback": FEEDBACK_SHAPES}
VALIDATION_SEED = 7919  # fixed, and not the split's seed: which records validate is independent of which went to test
if TYPE_CHECKING:  # a view of some of its fields, with their types
    TokenSettings: TypeAlias = TrainingConfig
else:
    TokenSettings = pick(
        TrainingConfig, "max_seq_length", "packing", "loss_on", name="TokenSettings"
    )


class TokenizeParams(StageParams):
    training: TokenSettings = Field(default_factory=TokenSettings)
    validation_fraction: float | None = unset_keeps_lots(
        description="Share of the train split kept apart as validation (set when training evaluates)."
    )
    shape: Literal["sft", "preference", "feedback"] = "sft"  # the record shape the method trains on
    method: str = run_setting(
        "lora",
        description="The training method, for messages about its data; dpo and orpo share one result.",
    )
    persona: str | None = persona_field()
    base_model: str | None = None  # a hub id, used only without a 'base' input


@register
class Tokenize:
    name = "tokenize"
    holds = "dataset"
    libraries = TRAINING_LIBRARIES
    version = "1"
    Params = TokenizeParams
    sections = ()  # reads training.max_seq_length, packing and loss_on

    def wire(self, wiring: Wiring) -> None:
        """The tokenize stage, for methods that train on token ids."""
        from opensem.training.methods import get_method

        m = wiring.manifest
        if m.compute.backend == "openai":
            return  # the provider tokenizes
        method = get_method(m.method_config.type)
        shape = method.token_shape
        # Pairs are cut to length by trl's collator at training time; the sequence length still shapes the test split.
        names = TokenSettings.model_fields if shape == "sft" else ("max_seq_length",)
        training = {name: getattr(m.training, name) for name in names}
        validation = m.training.validation_fraction if m.training.eval_steps is not None else None
        params = wiring.params(
            TokenizeParams,
            {
                "training": training,
                "shape": shape,
                "method": method.name,
                "persona": wiring.persona(),
                "base_model": wiring.hub_model,
                "validation_fraction": validation,
            },
        )
        if params is None:
            return
        test = wiring.channel("test")
        inputs = {
            "train": wiring.channel("train"),
            **({"test": test} if test is not None else {}),
            **wiring.original_base_inputs(),
        }  # pretraining keeps the tokenizer
        wiring.add(self, params, inputs, provides=("tokens",))

    def run(
        self, params: TokenizeParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Tokenize the train and test records once, for training and evaluation."""
        from opensem.stages.train import _train_file
        from opensem.training.data import check_shapes, load_records
        from opensem.training.methods.base import (
            load_tokenizer,
            quiet_libraries,
            resolve_base_model,
        )
        from opensem.training.tokenized import pack, padding_fraction, tokenize, write_sequences

        settings = params.training
        records = load_records(_train_file(inputs))
        check_shapes(records, SHAPES[params.shape], params.method)  # before a tokenizer loads
        with quiet_libraries():
            tokenizer = load_tokenizer(
                resolve_base_model(inputs, params.base_model, self.name), self.name
            )
        if params.shape != "sft":
            return _paired(params, records.records, tokenizer, inputs, out_dir, ctx)
        bar = ctx.progress("tokenizing", len(records))
        train_records, held = _hold_out(records.records, params.validation_fraction)
        sequences = tokenize(
            records_with_persona(train_records, params.persona),
            tokenizer,
            settings.max_seq_length,
            settings.loss_on,
        )
        bar.advance(len(records))
        bar.close()
        if held:
            write_sequences(
                out_dir,
                "validation",
                tokenize(
                    records_with_persona(held, params.persona),
                    tokenizer,
                    settings.max_seq_length,
                    settings.loss_on,
                ),
                {"records": len(held)},
            )
        unpacked = padding_fraction(sequences, 8)
        laid = pack(sequences, settings.max_seq_length) if settings.packing else sequences
        write_sequences(
            out_dir,
            "train",
            laid,
            {"records": len(records), "packing": settings.packing, "loss_on": settings.loss_on},
        )
        tested = _test_split(params, inputs, tokenizer, out_dir)
        tokens = sum(len(s.ids) for s in laid)
        held_note = f"{len(held)} held out for validation; " if held else ""
        packed = (
            f", packed into {len(laid)} sequences (padding {padding_fraction(laid, 8):.0%}, {unpacked:.0%} unpacked)"
            if settings.packing
            else ""
        )
        return StageResult(
            summary=f"{len(train_records)} records -> {tokens:,} tokens{packed}; {held_note}{tested} test sequences",
            metrics={
                "records": len(records),
                "sequences": len(laid),
                "tokens": tokens,
                "padding_fraction": round(padding_fraction(laid, 8), 4),
            },
        )


def _test_split(
    params: TokenizeParams, inputs: dict[str, Path], tokenizer: Any, out_dir: Path
) -> int:
    """The test split as evaluate scores its perplexity: one sequence per scorable record, in order."""
    from opensem.evaluation.items import scorable
    from opensem.training.data import load_records
    from opensem.training.tokenized import tokenize, write_sequences

    if "test" not in inputs:
        return 0
    test = load_records(
        Path(inputs["test"]) / "test.jsonl"
        if Path(inputs["test"]).is_dir()
        else Path(inputs["test"])
    )
    kept = [record for raw in test.records if (record := scorable(raw)) is not None]
    sequences = tokenize(
        records_with_persona(kept, params.persona),
        tokenizer,
        params.training.max_seq_length,
        "all",
        keep_short=True,
    )
    write_sequences(out_dir, "test", sequences, {"records": len(kept)})
    return len(sequences)


def _paired(
    params: TokenizeParams,
    records: list[dict[str, Any]],
    tokenizer: Any,
    inputs: dict[str, Path],
    out_dir: Path,
    ctx: StageContext,
) -> StageResult:
    """Preference or feedback records as prompt and answer ids, split where trl splits them."""
    from opensem.training.paired_tokens import paired_rows, write_rows

    bar = ctx.progress("tokenizing", len(records))
    rows = paired_rows(records_with_persona(records, params.persona), tokenizer, params.shape)
    bar.advance(len(records))
    bar.close()
    write_rows(out_dir, "train", rows, params.shape, {"records": len(records)})
    tokens = sum(len(value) for row in rows for key, value in row.items() if key.endswith("_ids"))
    tested = _test_split(params, inputs, tokenizer, out_dir)
    return StageResult(
        summary=(
            f"{len(records)} {params.shape} records -> {len(rows)} rows, {tokens:,} tokens; "
            f"{tested} test sequences"
        ),
        metrics={"records": len(records), "sequences": len(rows), "tokens": tokens},
    )


def _hold_out(
    records: list[dict[str, Any]], fraction: float | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation): a record is held out when a digest of its id falls below the fraction, so
    adding records never moves the others (as the split stage decides train and test)."""
    if not fraction:
        return records, []
    from opensem.data.splitting import split_score

    held = [r for r in records if split_score(str(r.get("id", "")), VALIDATION_SEED) < fraction]
    kept = [r for r in records if split_score(str(r.get("id", "")), VALIDATION_SEED) >= fraction]
    return kept, held
