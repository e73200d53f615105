"""The preference methods of trl as one class with parameters: DPO, ORPO and KTO.

They differ only in the trl classes they use, the record shape they read and the token columns
those records become; everything else (a LoRA adapter, beta, the tokenize stage's ids passed
through untouched) is the family's.

- DPO: direct preference optimization on prompt/chosen/rejected records. The reference model is
  the base itself with the adapter switched off, so no second copy of the weights is held; each
  example still runs two sequences through the policy and the reference, which is why the
  hardware preflight wants a 24 GB card for real models unless gradient checkpointing is allowed.
- ORPO: odds-ratio preference optimization, SFT and preference in one loss with no reference
  model. trl moved ORPOTrainer to trl.experimental.orpo (1.x); older releases, such as the ones
  unsloth pins, export it at the top level, so both places are tried.
- KTO: Kahneman-Tversky optimization from single completions labelled good or bad. It takes
  native feedback records and preference records alike (a pair becomes its chosen answer labelled
  true and its rejected one labelled false). Its KL estimate pairs each completion with another
  prompt of the same batch, so a batch needs two or more records.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from opensem.training.data import feedback_rows, preference_rows
from opensem.training.methods import register_method
from opensem.training.methods.base import FEEDBACK_SHAPES, PREFERENCE_SHAPES
from opensem.training.methods.options import PreferenceOptions
from opensem.training.methods.recipe import TrainerMethod

if TYPE_CHECKING:
    from opensem.training.config import TrainParams

PREFERENCE_METRICS = ("rewards/accuracies", "rewards/margins")


class PreferenceMethod(TrainerMethod):
    """A trl preference trainer on a LoRA adapter; members set the class attributes below."""

    trl_classes: ClassVar[tuple[str, str]]  # (config, trainer) names
    trl_modules: ClassVar[tuple[str, ...]] = ("trl",)  # where to look for them, first found wins

    @staticmethod
    def rows(records: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
        """Records -> the trainer's text rows (each method names its own function)."""
        raise NotImplementedError

    id_columns: ClassVar[tuple[str, ...]] = ()  # the tokenize stage's columns, passed as they are
    extra_args: ClassVar[dict[str, Any]] = {}

    def dataset(self, records: list[dict[str, Any]], tokenizer: Any, params: TrainParams) -> Any:
        """The trainer's text rows as a datasets.Dataset."""
        from datasets import Dataset

        if records and "prompt_ids" in records[0]:  # the tokenize stage's ids
            return self.token_dataset(records, params)
        return Dataset.from_list(type(self).rows(records, tokenizer))

    def token_dataset(self, records: list[dict[str, Any]], params: TrainParams) -> Any:
        """The tokenize stage's rows as a datasets.Dataset (trl skips tokenizing them)."""
        from datasets import Dataset

        return Dataset.from_dict({c: [r[c] for r in records] for c in self.id_columns})

    def trl(self) -> tuple[type, type]:
        """(config class, trainer class) from the first module of trl_modules that has them."""
        for module in self.trl_modules:
            try:
                # The experimental namespace warns on import; choosing the method is the user's call.
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*trl.experimental")
                    found = importlib.import_module(module)
                return getattr(found, self.trl_classes[0]), getattr(found, self.trl_classes[1])
            except (ImportError, AttributeError):
                continue
        raise ImportError(
            f"this trl has no {' or '.join(self.trl_classes)} (looked in {', '.join(self.trl_modules)})"
        )

    def config_class(self) -> type:
        """The method's trl config class."""
        return self.trl()[0]

    def config_extra(self, params: TrainParams) -> dict[str, Any]:
        """The method's beta and its own trl arguments."""
        return {"beta": params.method_config.beta, **self.extra_args}

    def make_trainer(
        self, model: Any, tokenizer: Any, dataset: Any, args: Any, peft_config: Any
    ) -> Any:
        """The method's trl trainer, taking the rows as already tokenized."""
        from opensem.training.methods.pretokenized import skipping_tokenization

        return skipping_tokenization(self.trl()[1])(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )


class DpoOptions(PreferenceOptions):
    type: Literal["dpo"] = Field(
        "dpo",
        description="dpo: direct preference optimization on prompt/chosen/rejected records, with a LoRA adapter.",
    )


@register_method
class DpoMethod(PreferenceMethod):
    """Preference tuning against the frozen base as reference."""

    name = "dpo"
    Options = DpoOptions
    shapes = PREFERENCE_SHAPES
    paired = True
    vram_floor_gb = 24.0
    metric_extras = PREFERENCE_METRICS
    token_columns = {"prompt_ids": 2, "chosen_ids": 1, "rejected_ids": 1}
    token_shape = "preference"
    trl_classes = ("DPOConfig", "DPOTrainer")
    rows = staticmethod(preference_rows)
    id_columns = ("prompt_ids", "chosen_ids", "rejected_ids")


class OrpoOptions(PreferenceOptions):
    type: Literal["orpo"] = Field(
        "orpo",
        description="orpo: odds-ratio preference optimization, SFT and preference in one loss, no reference model.",
    )


@register_method
class OrpoMethod(PreferenceMethod):
    """Preference tuning with an odds-ratio penalty on the SFT loss."""

    name = "orpo"
    Options = OrpoOptions
    shapes = PREFERENCE_SHAPES
    paired = True
    vram_floor_gb = 24.0
    metric_extras = (*PREFERENCE_METRICS, "nll_loss", "log_odds_ratio")
    token_columns = {"chosen_input_ids": 1, "rejected_input_ids": 1}
    token_shape = "preference"
    trl_classes = ("ORPOConfig", "ORPOTrainer")
    trl_modules = ("trl.experimental.orpo", "trl")
    rows = staticmethod(preference_rows)
    extra_args = {
        "remove_unused_columns": False
    }  # its collator reads the raw prompt/chosen/rejected columns: the trainer must not drop them

    def token_dataset(self, records: list[dict[str, Any]], params: TrainParams) -> Any:
        """The tokenize stage's ids, in the columns ORPO builds per row."""
        from datasets import Dataset

        from opensem.training.paired_tokens import orpo_rows

        return Dataset.from_list(orpo_rows(records, params.training.max_seq_length))


class KtoOptions(PreferenceOptions):
    type: Literal["kto"] = Field(
        "kto",
        description=(
            "kto: Kahneman-Tversky optimization from single answers labelled good or bad (or "
            "preference pairs)."
        ),
    )


@register_method
class KtoMethod(PreferenceMethod):
    """Feedback tuning against the frozen base as reference."""

    name = "kto"
    Options = KtoOptions
    shapes = FEEDBACK_SHAPES
    paired = True  # each step also runs the mismatched (KL) completions
    min_batch_size = 2  # the KL term pairs each completion with another prompt of its batch
    metric_extras = ("rewards/margins", "kl")
    token_columns = {"prompt_ids": 1, "completion_ids": 1}
    token_shape = "feedback"
    trl_classes = ("KTOConfig", "KTOTrainer")
    rows = staticmethod(feedback_rows)
    id_columns = ("prompt_ids", "completion_ids", "label")
