"""KTO: Kahneman-Tversky optimization from single completions labelled good or bad.

It takes native feedback records (prompt, completion, label) and preference records alike: a pair
becomes its chosen answer labelled true and its rejected answer labelled false. Its KL estimate
pairs each completion with another prompt of the same batch, so a batch needs two or more records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from opensem.training.methods import register_method
from opensem.training.methods.base import FEEDBACK_SHAPES
from opensem.training.data import feedback_rows
from opensem.training.methods.options import PreferenceOptions
from opensem.training.methods.recipe import TrainerMethod

if TYPE_CHECKING:
    from opensem.training.config import TrainParams


class KtoOptions(PreferenceOptions):
    type: Literal["kto"] = Field("kto", description="kto: Kahneman-Tversky optimization from single answers labelled good or bad (or preference pairs).")


@register_method
class KtoMethod(TrainerMethod):
    """Feedback tuning against the frozen base as reference."""

    name = "kto"
    Options = KtoOptions
    shapes = FEEDBACK_SHAPES
    paired = True  # each step also runs the mismatched (KL) completions
    min_batch_size = 2  # the KL term pairs each completion with another prompt of its batch
    metric_extras = ("rewards/margins", "kl")
    token_columns = {"prompt_ids": 1, "completion_ids": 1}
    token_shape = "feedback"

    def dataset(self, records: list[dict[str, Any]], tokenizer: Any, params: TrainParams) -> Any:
        from datasets import Dataset

        if records and "prompt_ids" in records[0]:  # the tokenize stage's ids
            return Dataset.from_dict({c: [r[c] for r in records] for c in ("prompt_ids", "completion_ids", "label")})
        return Dataset.from_list(feedback_rows(records, tokenizer))

    def config_class(self) -> type:
        from trl import KTOConfig

        return KTOConfig

    def config_extra(self, params: TrainParams) -> dict[str, Any]:
        return {"beta": params.method_config.beta}

    def make_trainer(self, model: Any, tokenizer: Any, dataset: Any, args: Any, peft_config: Any) -> Any:
        from trl import KTOTrainer

        from opensem.training.methods.pretokenized import skipping_tokenization

        return skipping_tokenization(KTOTrainer)(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
