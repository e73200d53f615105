"""DPO: direct preference optimization on prompt/chosen/rejected records, with a LoRA adapter.

The reference model is the base itself with the adapter switched off, so no second copy of the
weights is held; each example still runs two sequences (chosen and rejected) through the policy
and the reference, which is why the hardware preflight wants a 24 GB card for real models unless
gradient checkpointing is allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from opensem.training.methods import register_method
from opensem.training.methods.base import PREFERENCE_SHAPES
from opensem.training.data import preference_rows
from opensem.training.methods.options import PreferenceOptions
from opensem.training.methods.recipe import TrainerMethod

if TYPE_CHECKING:
    from opensem.training.config import TrainParams

PREFERENCE_METRICS = ("rewards/accuracies", "rewards/margins")


class DpoOptions(PreferenceOptions):
    type: Literal["dpo"] = Field("dpo", description="dpo: direct preference optimization on prompt/chosen/rejected records, with a LoRA adapter.")


@register_method
class DpoMethod(TrainerMethod):
    """Preference tuning against the frozen base as reference."""

    name = "dpo"
    Options = DpoOptions
    shapes = PREFERENCE_SHAPES
    paired = True
    vram_floor_gb = 24.0
    metric_extras = PREFERENCE_METRICS
    token_columns = {"prompt_ids": 2, "chosen_ids": 1, "rejected_ids": 1}
    token_shape = "preference"

    def dataset(self, records: list[dict[str, Any]], tokenizer: Any, params: TrainParams) -> Any:
        from datasets import Dataset

        if records and "prompt_ids" in records[0]:  # the tokenize stage's ids
            return Dataset.from_dict({c: [r[c] for r in records] for c in ("prompt_ids", "chosen_ids", "rejected_ids")})
        return Dataset.from_list(preference_rows(records, tokenizer))

    def config_class(self) -> type:
        from trl import DPOConfig

        return DPOConfig

    def config_extra(self, params: TrainParams) -> dict[str, Any]:
        return {"beta": params.method_config.beta}

    def make_trainer(self, model: Any, tokenizer: Any, dataset: Any, args: Any, peft_config: Any) -> Any:
        from trl import DPOTrainer

        from opensem.training.methods.pretokenized import skipping_tokenization

        return skipping_tokenization(DPOTrainer)(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
