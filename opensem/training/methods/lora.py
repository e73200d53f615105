"""LoRA supervised fine-tuning: low-rank adapters on every linear layer.

The tokenize stage's ids (one record or a packed run of records per row, with a loss mask) train
through transformers' Trainer and opensem's collator, so nothing is tokenized or mapped again.
Records handed over directly (a launched worker, a test) are tokenized by opensem.training.data,
the rendering evaluation uses too, and train through trl's SFTTrainer. The variants that only
change the adapter or the loading (dora, qlora) and full fine-tuning (sft) subclass this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from opensem.training.data import encode_records
from opensem.training.methods import register_method
from opensem.training.methods.base import SFT_SHAPES
from opensem.training.methods.options import AdapterOptions
from opensem.training.methods.recipe import TrainerMethod

if TYPE_CHECKING:
    from opensem.training.config import TrainParams


class SupervisedMethod(TrainerMethod):
    """Next-token training on chats (messages) and documents (text), through SFTTrainer."""

    shapes = SFT_SHAPES

    def dataset(self, records: list[dict[str, Any]], tokenizer: Any, params: TrainParams) -> Any:
        """Rows of the tokenize stage (input_ids, loss_mask, seq_lengths), or records tokenized here."""
        from datasets import Dataset

        # Ready to batch: trl's dataset preparation is skipped
        if records and "input_ids" in records[0]:
            return Dataset.from_dict(
                {
                    key: [r[key] for r in records]
                    for key in ("input_ids", "loss_mask", "seq_lengths")
                }
            )
        return Dataset.from_dict(
            {"input_ids": encode_records(records, tokenizer, params.training.max_seq_length)}
        )

    def config_class(self) -> type:
        """trl's SFTConfig."""
        from trl import SFTConfig

        return SFTConfig

    def config_extra(self, params: TrainParams) -> dict[str, Any]:
        """Sequences are packed by the tokenize stage, not by trl."""
        return {"packing": False}

    def make_trainer(
        self,
        model: Any,
        tokenizer: Any,
        dataset: Any,
        args: Any,
        peft_config: Any,
        eval_dataset: Any = None,
    ) -> Any:
        """trl's SFTTrainer, on the tokenize stage's sequences when they are there."""
        # The tokenize stage's rows: its collator masks loss and record boundaries
        if "seq_lengths" in dataset.column_names:
            from transformers import Trainer

            from opensem.training.tokenized import PackedCollator

            if peft_config is not None:
                from peft import get_peft_model

                model = get_peft_model(model, peft_config)
            args.remove_unused_columns = False
            return Trainer(
                model=model,
                args=args,
                train_dataset=dataset,
                eval_dataset=eval_dataset,
                processing_class=tokenizer,
                data_collator=PackedCollator(tokenizer.pad_token_id),
            )
        from trl import SFTTrainer

        return SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )


class LoraOptions(AdapterOptions):
    type: Literal["lora"] = Field(
        "lora",
        description="lora: low-rank adapters on the linear layers, trained on chats and documents (the default).",
    )


@register_method
class LoraMethod(SupervisedMethod):
    """Low-rank adapters on the linear layers; the base weights stay frozen."""

    name = "lora"
    Options = LoraOptions
