"""ORPO: odds-ratio preference optimization, SFT and preference in one loss with no reference model.

trl moved ORPOTrainer to trl.experimental.orpo (1.x); older releases, such as the ones unsloth
pins, export it at the top level, so both places are tried.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from opensem.training.methods import register_method
from opensem.training.methods.base import PREFERENCE_SHAPES
from opensem.training.data import preference_rows
from opensem.training.methods.dpo import PREFERENCE_METRICS
from opensem.training.methods.options import PreferenceOptions
from opensem.training.methods.recipe import TrainerMethod

if TYPE_CHECKING:
    from opensem.training.config import TrainParams


def _orpo() -> tuple[type, type]:
    """(ORPOConfig, ORPOTrainer) from wherever this trl keeps them."""
    try:
        with warnings.catch_warnings():  # the experimental namespace warns on import; choosing orpo is the user's call
            warnings.filterwarnings("ignore", message=".*trl.experimental")
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    except ImportError:
        from trl import ORPOConfig, ORPOTrainer  # type: ignore[attr-defined,no-redef]
    return ORPOConfig, ORPOTrainer


class OrpoOptions(PreferenceOptions):
    type: Literal["orpo"] = Field("orpo", description="orpo: odds-ratio preference optimization, SFT and preference in one loss, no reference model.")


@register_method
class OrpoMethod(TrainerMethod):
    """Preference tuning with an odds-ratio penalty on the SFT loss."""

    name = "orpo"
    Options = OrpoOptions
    shapes = PREFERENCE_SHAPES
    paired = True
    vram_floor_gb = 24.0
    metric_extras = (*PREFERENCE_METRICS, "nll_loss", "log_odds_ratio")
    token_columns = {"chosen_input_ids": 1, "rejected_input_ids": 1}
    token_shape = "preference"

    def dataset(self, records: list[dict[str, Any]], tokenizer: Any, params: TrainParams) -> Any:
        from datasets import Dataset

        if records and "prompt_ids" in records[0]:  # the tokenize stage's ids, in the columns ORPO builds per row
            from opensem.training.paired_tokens import orpo_rows

            return Dataset.from_list(orpo_rows(records, params.training.max_seq_length))
        return Dataset.from_list(preference_rows(records, tokenizer))

    def config_class(self) -> type:
        return _orpo()[0]

    def config_extra(self, params: TrainParams) -> dict[str, Any]:
        # Its collator reads the raw prompt/chosen/rejected columns, so the trainer must not drop them.
        return {"beta": params.method_config.beta, "remove_unused_columns": False}

    def make_trainer(self, model: Any, tokenizer: Any, dataset: Any, args: Any, peft_config: Any) -> Any:
        from opensem.training.methods.pretokenized import skipping_tokenization

        return skipping_tokenization(_orpo()[1])(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
