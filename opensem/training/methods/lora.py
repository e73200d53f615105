"""LoRA supervised fine-tuning: low-rank adapters on every linear layer, trained with trl's SFTTrainer.

Records are tokenized by opensem.training.data (the rendering evaluation uses too) and handed to
SFTTrainer already tokenized, so trl's own formatting never diverges from ours. The variants that
only change the adapter or the loading (dora, qlora) and full fine-tuning (sft) subclass this.
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
        from datasets import Dataset

        return Dataset.from_dict({"input_ids": encode_records(records, tokenizer, params.training.max_seq_length)})

    def config_class(self) -> type:
        from trl import SFTConfig

        return SFTConfig

    def config_extra(self, params: TrainParams) -> dict[str, Any]:
        return {"packing": False}

    def make_trainer(self, model: Any, tokenizer: Any, dataset: Any, args: Any, peft_config: Any) -> Any:
        from trl import SFTTrainer

        return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)


class LoraOptions(AdapterOptions):
    type: Literal["lora"] = Field("lora", description="lora: low-rank adapters on the linear layers, trained on chats and documents (the default).")


@register_method
class LoraMethod(SupervisedMethod):
    """Low-rank adapters on the linear layers; the base weights stay frozen."""

    name = "lora"
    Options = LoraOptions
