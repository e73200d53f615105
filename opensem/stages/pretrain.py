"""Stage kind pretrain: continued pretraining before the adapter, producing the base it trains on.

`pretrain: {source: documents}` trains the whole base model (or, with `adapter: lora`, a LoRA adapter
with the embeddings and the output head trained in full, merged back in) on the raw text of the
ingested documents, every sentence sharing a 13-gram with the golden set removed first.
`source: train` takes the train split instead (after decontamination), every record as the text
training renders. The result is a whole model (model/, tokenizer included) that becomes the base
of train, fold and publish; baseline and the base side of evaluate keep the original base, so the
headline compares against the model the manifest started from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import Field

from opensem.errors import DataError, StageError
from opensem.settings.fields import field_like, pick
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import TRAINING_LIBRARIES, StageContext, StageParams, StageResult
from opensem.stages.wiring import Wiring
from opensem.training.config import ComputeConfig, TrainingConfig
from opensem.training.methods.options import AdapterOptions

SENTENCE = re.compile(r"(?<=[.!?])\s+")
if TYPE_CHECKING:  # a view of some of its fields, with their types
    Schedule: TypeAlias = TrainingConfig
else:
    Schedule = pick(
        TrainingConfig,
        "epochs",
        "max_steps",
        "learning_rate",
        "max_seq_length",
        "warmup_ratio",
        "lr_scheduler",
        "logging_steps",
        name="PretrainSchedule",
    )
if TYPE_CHECKING:  # a view of some of its fields, with their types
    PretrainCompute: TypeAlias = ComputeConfig
else:
    PretrainCompute = pick(
        ComputeConfig, "batch_size", "grad_accum", "mixed_precision", name="PretrainCompute"
    )


class PretrainConfig(Schedule):
    source: Literal["documents", "train"] = Field(
        "documents",
        description="documents: the raw text of the ingested documents; train: the train split as training renders it.",
    )
    adapter: Literal["none", "lora"] = Field(
        "none",
        description=(
            "none: every weight trains; lora: a LoRA adapter with embeddings and head trained in "
            "full, merged back in."
        ),
    )
    rank: int = field_like(
        AdapterOptions, "rank", default=64, description="LoRA rank when adapter is lora."
    )


class PretrainParams(StageParams):
    pretrain: PretrainConfig
    compute: PretrainCompute
    seed: int
    base_model: str | None = None


@register
class Pretrain:
    name = "pretrain"
    libraries = TRAINING_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    version = "1"
    Params = PretrainParams
    sections = (
        section(
            "pretrain",
            PretrainConfig | None,
            None,
            description=(
                "Continued pretraining of the base model before the adapter; omit to start from "
                "the base as it is."
            ),
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """The pretrain stage, when configured: its model becomes the base of what follows."""
        from opensem.stages.eval_wiring import golden_input

        m = wiring.manifest
        if m.pretrain is None:
            return
        if m.compute.backend == "openai":
            wiring.problem(
                ("pretrain",),
                "a provider-tuned model cannot be pretrained here",
                "remove `pretrain:` or train locally",
            )
            return
        data = (
            wiring.channel("documents")
            if m.pretrain.source == "documents"
            else wiring.channel("train")
        )
        golden = golden_input(wiring) if m.pretrain.source == "documents" else None
        inputs = {
            "data": data,
            **wiring.base_inputs(),
            **({"golden": golden} if golden is not None else {}),
        }
        compute = {
            name: getattr(m.compute, name)
            for name in ("batch_size", "grad_accum", "mixed_precision")
        }
        params = wiring.params(
            PretrainParams,
            {
                "pretrain": m.pretrain,
                "compute": compute,
                "seed": m.seed,
                "base_model": wiring.hub_model,
            },
        )
        if params is None:
            return
        wiring.keep_original_base()
        wiring.add(self, params, inputs, provides=("base",))

    def run(
        self, params: PretrainParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Continue pretraining the base on the records' text."""
        from opensem.data.records import read_records
        from opensem.training.methods.base import resolve_base_model

        source = Path(inputs["data"])
        path = next(
            (
                source / name
                for name in ("records.jsonl", "train.jsonl")
                if (source / name).is_file()
            ),
            source,
        )
        records = read_records(path).records
        removed = 0
        if params.pretrain.source == "documents":
            records, removed = _clean_documents(
                [r for r in records if "text" in r], inputs.get("golden")
            )
        if not records:
            raise DataError(
                "pretrain: no text to train on",
                hint="pretrain source: documents needs .txt/.md/.pdf sources; or use source: train",
            )
        model = _train(
            params, records, resolve_base_model(inputs, params.base_model, self.name), out_dir, ctx
        )
        note = (
            f", {removed} sentences sharing a 13-gram with the golden set removed"
            if removed
            else ""
        )
        return StageResult(
            summary=(
                f"{model['how']} on {len(records)} {params.pretrain.source} records{note}: loss "
                f"{model['first']:.3f} -> {model['last']:.3f}"
            ),
            metrics={
                "records": len(records),
                "removed_sentences": removed,
                "train_loss": model["last"],
                "steps": model["steps"],
            },
        )


def _clean_documents(
    records: list[dict[str, Any]], golden: Path | None
) -> tuple[list[dict[str, Any]], int]:
    """Documents with every sentence that shares a 13-gram with a golden question or answer taken out."""
    if golden is None:
        return records, 0
    from opensem.curate.decontam import golden_references
    from opensem.curate.ngrams import NgramIndex

    index = NgramIndex(golden_references(Path(golden)), 13)
    cleaned, removed = [], 0
    for record in records:
        sentences = SENTENCE.split(record["text"])
        hits = index.overlaps(sentences)
        kept = [s for s, hit in zip(sentences, hits) if hit is None]
        removed += len(sentences) - len(kept)
        text = " ".join(kept)
        if text.strip() and index.overlaps([text])[0] is None:  # nor across the joins
            cleaned.append({**record, "text": text})
    return cleaned, removed


def _train(
    params: PretrainParams,
    records: list[dict[str, Any]],
    model_path: str,
    out_dir: Path,
    ctx: StageContext,
) -> dict[str, Any]:
    """Train with the sft method (whole model) or the lora method plus embeddings and head, merged;
    model/ in out_dir."""
    from opensem.training.config import TrainParams
    from opensem.training.methods import get_method
    from opensem.training.methods.base import TrainRequest

    config = params.pretrain
    schedule = {name: getattr(config, name) for name in Schedule.model_fields}
    method = (
        {"type": "sft"}
        if config.adapter == "none"
        else {
            "type": "lora",
            "rank": config.rank,
            "alpha": config.rank,
            "dropout": 0.0,
            "target_modules": "all-linear",
        }
    )
    train = TrainParams.model_validate(
        {
            "method_config": method,
            "training": {**schedule, "packing": True},
            "compute": params.compute.model_dump(),
            "seed": params.seed,
        }
    )
    records = _packed(
        records, model_path, config.max_seq_length
    )  # text end to end: no step is spent on padding
    bar: list[Any] = []
    hooks = _hooks(ctx, bar)
    trainer = get_method("sft") if config.adapter == "none" else _embedding_lora()
    scratch = ctx.work_dir / "artifact"
    outcome = trainer.train(
        TrainRequest(
            model_path=model_path,
            records=records,
            out_dir=scratch,
            work_dir=ctx.work_dir,
            params=train,
            hooks=hooks,
            log=ctx.log,
        )
    )
    for closing in bar:
        closing.close()
    if config.adapter == "lora":
        _merge(model_path, scratch, out_dir / "model")
    else:
        scratch.rename(out_dir / "model")
    losses = [row["loss"] for row in outcome.log if "loss" in row] or [outcome.train_loss]
    return {
        "how": "whole model" if config.adapter == "none" else f"LoRA r={config.rank} + embeddings",
        "first": losses[0],
        "last": losses[-1],
        "steps": outcome.steps,
    }


def _packed(
    records: list[dict[str, Any]], model_path: str, max_length: int
) -> list[dict[str, Any]]:
    from opensem.training.methods.base import load_tokenizer, quiet_libraries
    from opensem.training.tokenized import pack, tokenize

    with quiet_libraries():
        tokenizer = load_tokenizer(model_path, "pretrain")
    return [
        {"input_ids": s.ids, "loss_mask": s.loss, "seq_lengths": s.lengths}
        for s in pack(tokenize(records, tokenizer, max_length, "all"), max_length)
    ]


def _hooks(ctx: StageContext, bar: list[Any]) -> Any:
    from opensem.training.methods.base import TrainHooks

    return TrainHooks(
        on_start=lambda total, done: bar.append(ctx.progress("pretraining", total)),
        on_step=lambda: bar[0].advance() if bar else None,
    )


def _embedding_lora() -> Any:
    """The lora method with the embeddings and output head trained in full (new domain words need them)."""
    from opensem.training.backends import AdapterSpec
    from opensem.training.methods.lora import LoraMethod

    class EmbeddingLora(LoraMethod):
        def adapter_spec(self, options: Any, model: Any) -> AdapterSpec | None:
            spec = super().adapter_spec(options, model)
            return (
                None
                if spec is None
                else AdapterSpec(
                    spec.rank,
                    spec.alpha,
                    spec.dropout,
                    spec.targets,
                    spec.use_dora,
                    ("embed_tokens", "lm_head"),
                )
            )

    return EmbeddingLora()


def _merge(base: str, adapter: Path, out: Path) -> None:
    """base + adapter as one whole model, with the tokenizer the adapter carries."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from opensem.training.methods.base import quiet_libraries

    with quiet_libraries():
        model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), str(adapter)
        ).merge_and_unload()
        model.save_pretrained(out)
        AutoTokenizer.from_pretrained(adapter).save_pretrained(out)
    if not (out / "config.json").is_file():
        raise StageError("pretrain: the merged model was not written", hint="check free disk space")
