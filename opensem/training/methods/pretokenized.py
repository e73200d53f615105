"""trl's preference trainers taking the tokenize stage's ids instead of tokenizing again.

DPOTrainer and KTOTrainer tokenize in `_prepare_dataset`, ORPOTrainer in `tokenize_row`. Given rows
that already carry ids (opensem.training.paired_tokens builds them the way those methods do), the
subclasses here skip that step and keep what follows it: dropping rows whose prompt alone fills
max_length, and for KTO the mismatched completions its KL estimate reads.
"""

from __future__ import annotations

from typing import Any


def skipping_tokenization(trainer_class: type) -> type:
    """trainer_class, with tokenization skipped for datasets that already hold token ids."""

    class Pretokenized(trainer_class):
        def _prepare_dataset(
            self, dataset: Any, processing_class: Any, args: Any, dataset_name: str
        ) -> Any:
            if "prompt_ids" not in dataset.column_names:
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            if (
                args.max_length is not None
                and getattr(args, "truncation_mode", "keep_start") == "keep_start"
            ):
                dataset = dataset.filter(lambda row: len(row["prompt_ids"]) < args.max_length)
            # KTO: each completion also follows the previous row's prompt
            if getattr(self, "calculate_KL", False):

                def mismatched(rows: dict[str, Any]) -> dict[str, Any]:
                    rows["KL_completion_ids"] = [rows["completion_ids"][-1]] + rows[
                        "completion_ids"
                    ][:-1]
                    return rows

                dataset = dataset.map(
                    mismatched, batched=True, batch_size=args.per_device_train_batch_size
                )
            return dataset

        # ORPO's per-row step
        def tokenize_row(self, feature: dict[str, Any], model: Any = None) -> dict[str, Any]:
            if "chosen_input_ids" in feature:
                return feature
            return super().tokenize_row(feature, model)

    Pretokenized.__name__ = f"Pretokenized{trainer_class.__name__}"
    return Pretokenized
