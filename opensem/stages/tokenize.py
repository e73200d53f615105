"""Stage kind tokenize: the training records as token ids, once per tokenizer and settings.

Its lot is keyed by the train split's bytes, the tokenizer's files (the base model's folder, or its
hub id), max_seq_length, packing, loss_on, the persona and the record shape the method trains on,
and nothing else: changing the learning rate or the rank retrains from the stored tokens, while a
new tokenizer, chat template or sequence length tokenizes again. The test split is tokenized here
too, for evaluate's perplexity. Present for the methods that train on token ids (sft, lora, dora,
qlora); preference methods hand prompt/answer pairs to trl, which tokenizes them itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from opensem.data.persona import persona_field, records_with_persona
from opensem.manifest.fields import pick
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult
from opensem.stages.wiring import Wiring
from opensem.training.config import TrainingConfig

TokenSettings = pick(TrainingConfig, "max_seq_length", "packing", "loss_on", name="TokenSettings")


class TokenizeParams(StageParams):
    training: TokenSettings = Field(default_factory=TokenSettings)  # type: ignore[valid-type]
    shape: Literal["sft"] = "sft"  # the record shape the method trains on (chats and documents)
    persona: str | None = persona_field()
    base_model: str | None = None  # a hub id, used only without a 'base' input


@register
class Tokenize:
    name = "tokenize"
    version = "1"
    Params = TokenizeParams
    sections = ()  # reads training.max_seq_length, packing and loss_on

    def wire(self, wiring: Wiring) -> None:
        from opensem.training.methods import get_method

        m = wiring.manifest
        if not getattr(get_method(m.method_config.type), "tokenized", False) or m.compute.backend == "openai":
            return
        training = {name: getattr(m.training, name) for name in TokenSettings.model_fields}
        params = wiring.params(TokenizeParams, {"training": training, "persona": wiring.persona(), "base_model": wiring.hub_model})
        if params is None:
            return
        test = wiring.channel("test")
        inputs = {"train": wiring.channel("train"), **({"test": test} if test is not None else {}), **wiring.base_inputs()}
        wiring.add(self, params, inputs, provides=("tokens",))

    def run(self, params: TokenizeParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        from opensem.evaluation.items import scorable
        from opensem.stages.train import _train_file
        from opensem.training.data import check_shapes, load_records
        from opensem.training.methods.base import SFT_SHAPES, load_tokenizer, quiet_libraries, resolve_base_model
        from opensem.training.tokenized import pack, padding_fraction, tokenize, write_sequences

        settings = params.training
        records = load_records(_train_file(inputs))
        check_shapes(records, SFT_SHAPES, "tokenize")
        with quiet_libraries():
            tokenizer = load_tokenizer(resolve_base_model(inputs, params.base_model, self.name), self.name)
        bar = ctx.progress("tokenizing", len(records))
        sequences = tokenize(records_with_persona(records.records, params.persona), tokenizer, settings.max_seq_length, settings.loss_on)
        bar.advance(len(records))
        bar.close()
        unpacked = padding_fraction(sequences, 8)
        laid = pack(sequences, settings.max_seq_length) if settings.packing else sequences
        write_sequences(out_dir, "train", laid, {"records": len(records), "packing": settings.packing, "loss_on": settings.loss_on})
        tested = 0
        if "test" in inputs:
            test = load_records(Path(inputs["test"]) / "test.jsonl" if Path(inputs["test"]).is_dir() else Path(inputs["test"]))
            kept = [record for raw in test.records if (record := scorable(raw)) is not None]
            test_sequences = tokenize(records_with_persona(kept, params.persona), tokenizer, settings.max_seq_length, "all", keep_short=True)
            write_sequences(out_dir, "test", test_sequences, {"records": len(kept)})
            tested = len(test_sequences)
        tokens = sum(len(s.ids) for s in laid)
        packed = f", packed into {len(laid)} sequences (padding {padding_fraction(laid, 8):.0%}, {unpacked:.0%} unpacked)" if settings.packing else ""
        return StageResult(summary=f"{len(records)} records -> {tokens:,} tokens{packed}; {tested} test sequences",
                           metrics={"records": len(records), "sequences": len(laid), "tokens": tokens, "padding_fraction": round(padding_fraction(laid, 8), 4)})
