"""KTO: Kahneman-Tversky optimization from single completions labelled good or bad.

It takes native feedback records (prompt, completion, label) and preference records alike: a pair
becomes its chosen answer labelled true and its rejected answer labelled false. Its KL estimate
pairs each completion with another prompt of the same batch, so a batch needs two or more records.
"""

from __future__ import annotations

from typing import Any

from opensem.training.methods import register_method
from opensem.training.methods.base import FEEDBACK_SHAPES, Hyperparams
from opensem.training.data import feedback_rows
from opensem.training.methods.recipe import DEFAULT_BETA, TrainerMethod


@register_method
class KtoMethod(TrainerMethod):
    """Feedback tuning against the frozen base as reference."""

    name = "kto"
    shapes = FEEDBACK_SHAPES
    paired = True  # each step also runs the mismatched (KL) completions
    min_batch_size = 2  # the KL term pairs each completion with another prompt of its batch
    metric_extras = ("rewards/margins", "kl")
    token_columns = {"prompt_ids": 1, "completion_ids": 1}

    def dataset(self, records: list[dict[str, Any]], tokenizer: Any, hyper: Hyperparams) -> Any:
        from datasets import Dataset

        return Dataset.from_list(feedback_rows(records, tokenizer))

    def config_class(self) -> type:
        from trl import KTOConfig

        return KTOConfig

    def config_extra(self, hyper: Hyperparams) -> dict[str, Any]:
        return {"beta": hyper.beta if hyper.beta is not None else DEFAULT_BETA}

    def make_trainer(self, model: Any, tokenizer: Any, dataset: Any, args: Any, peft_config: Any) -> Any:
        from trl import KTOTrainer

        return KTOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
