"""Distillation: a LoRA adapter on the student learns the teacher's temperature-softened next-token
distribution, mixed with the ordinary next-token loss on the data.

loss = a * T^2 * KL(teacher_T || student_T) + (1 - a) * cross-entropy [+ hidden_weight * MSE of the
last hidden states]. The T^2 keeps the soft part's gradients on the scale of the hard part's as T
grows (Hinton et al., 2015); a is distill_alpha. The teacher is loaded once, frozen, in eval mode, and run under
no_grad; only the positions that carry a label count, so padding and prompt tokens (loss_on:
assistant) teach nothing. Teacher and student must share one tokenizer: a KL between two
vocabularies compares unrelated token ids, so a mismatch is refused before any weight loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from opensem.errors import StageError
from opensem.settings.fields import Section
from opensem.training.methods import register_method
from opensem.training.methods.lora import SupervisedMethod
from opensem.training.methods.options import AdapterOptions

if TYPE_CHECKING:
    from opensem.training.config import TrainParams
    from opensem.training.methods.base import TrainOutcome, TrainRequest

LOSS_PARTS = ("loss_soft", "loss_hard", "loss_hidden")


class TeacherManifest(Section):
    """A teacher another manifest of this project trains (its adapter or whole model, built here first)."""

    manifest: str = Field(
        description="Path of the manifest whose trained model teaches, relative to the project root."
    )


class DistillOptions(AdapterOptions):
    type: Literal["distill"] = Field(
        "distill",
        description="distill: a LoRA adapter on the student learns a teacher model's softened next-token distribution.",
    )
    teacher: str | TeacherManifest = Field(
        description=(
            "The teacher: a hub id, a local model folder (relative to the project root), or "
            "{manifest: ...} for a model another manifest trains. It must share the student's "
            "tokenizer."
        )
    )
    temperature: float = Field(
        2.0,
        gt=0,
        le=20,
        description=(
            "Softmax temperature for both models' logits in the soft loss; higher spreads more of "
            "the teacher's knowledge over unlikely tokens."
        ),
    )
    # Not `alpha`: that is the adapter's scaling, which a distilled LoRA adapter has too.
    distill_alpha: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "Share of the soft (KL) loss, the alpha of knowledge distillation; the hard next-token "
            "loss on the data gets 1 - distill_alpha."
        ),
    )
    hidden_weight: float = Field(
        0.0,
        ge=0,
        description=(
            "Weight of a mean-squared error between teacher and student last hidden states (needs "
            "equal hidden sizes); 0 turns it off."
        ),
    )

    @model_validator(mode="after")
    def _teaches_something(self) -> DistillOptions:
        if self.distill_alpha == 0 and self.hidden_weight == 0:
            raise ValueError(
                "distill_alpha 0 and hidden_weight 0 leave nothing of the teacher in the loss: use method lora, or "
                "raise distill_alpha"
            )
        return self


@register_method
class DistillMethod(SupervisedMethod):
    """LoRA on the student with a frozen teacher's soft targets."""

    name = "distill"
    Options = DistillOptions
    metric_extras = LOSS_PARTS
    # Set by train() for make_trainer, which the shared recipe calls with the trainer arguments only.
    options: DistillOptions
    teacher_path: str = ""
    teacher_base: str | None = None

    def train(self, request: TrainRequest) -> TrainOutcome:
        """Train the student against the teacher's logits."""
        self.options = options = request.params.method_config
        self.teacher_path = request.models.get("teacher") or str(options.teacher)
        self.teacher_base = request.models.get("teacher_base")
        check_tokenizers(request.model_path, teacher_model_dir(self.teacher_path))
        return super().train(request)

    def dataset(self, records: list[dict[str, Any]], tokenizer: Any, params: TrainParams) -> Any:
        """Every row as (input_ids, loss_mask, seq_lengths): one collator for packed and single records."""
        from datasets import Dataset

        if not records or "input_ids" not in records[0]:
            from opensem.training.tokenized import tokenize

            records = [
                {"input_ids": s.ids, "loss_mask": s.loss, "seq_lengths": s.lengths}
                for s in tokenize(
                    records, tokenizer, params.training.max_seq_length, params.training.loss_on
                )
            ]
        return Dataset.from_dict(
            {key: [r[key] for r in records] for key in ("input_ids", "loss_mask", "seq_lengths")}
        )

    def config_extra(self, params: TrainParams) -> dict[str, Any]:
        """The distillation rows carry their own columns: keep them."""
        return {"remove_unused_columns": False}

    def config_class(self) -> type:
        """Distillation uses transformers' plain TrainingArguments."""
        from transformers import TrainingArguments

        return TrainingArguments

    def make_trainer(
        self,
        model: Any,
        tokenizer: Any,
        dataset: Any,
        args: Any,
        peft_config: Any,
        eval_dataset: Any = None,
    ) -> Any:
        """The distillation trainer, with the teacher loaded."""
        from opensem.training.methods.distill_trainer import distill_trainer
        from opensem.training.tokenized import PackedCollator

        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        teacher = load_teacher(self.teacher_path, self.teacher_base)
        return distill_trainer(
            model,
            teacher,
            self.options,
            args,
            dataset,
            eval_dataset,
            tokenizer,
            PackedCollator(tokenizer.pad_token_id),
        )


def teacher_model_dir(path: str) -> str:
    """Where a teacher's config and tokenizer are: the adapter or model in a stage output, or the path (a hub id)."""
    from opensem.training.methods.base import artifact_in

    found = artifact_in(Path(path)) if Path(path).is_dir() else None
    return str(found[1]) if found is not None else path


def check_tokenizers(student: str, teacher: str) -> None:
    """Refuse a teacher whose tokenizer is not the student's: same vocabulary, same special tokens."""
    from opensem.training.methods.base import load_tokenizer, quiet_libraries

    with quiet_libraries():
        ours, theirs = load_tokenizer(student, "distill"), load_tokenizer(teacher, "distill")
    differences = []
    if ours.get_vocab() != theirs.get_vocab():
        mine, other = set(ours.get_vocab()), set(theirs.get_vocab())
        differences.append(
            f"vocabularies differ ({len(mine)} vs {len(other)} tokens, {len(mine ^ other)} not shared)"
        )
    for role in ("bos_token_id", "eos_token_id"):
        if getattr(ours, role) != getattr(theirs, role):
            differences.append(f"{role} {getattr(ours, role)} vs {getattr(theirs, role)}")
    if differences:
        raise StageError(
            f"distill: the teacher's tokenizer is not the student's: {'; '.join(differences)}",
            hint=(
                "pick a teacher of the student's model family (one tokenizer), or train the "
                "student with lora on the teacher's answers (synthesis)"
            ),
        )


def load_teacher(path: str, base: str | None) -> Any:
    """The teacher as one frozen model: a whole model, or an adapter merged into its base."""
    from opensem.training.methods.base import load_causal_lm, quiet_libraries, resolve_base_model

    folder = Path(teacher_model_dir(path))
    with quiet_libraries():
        if (folder / "adapter_config.json").is_file():
            from peft import PeftModel

            base_path = (
                resolve_base_model({"base": Path(base)}, None, "distill")
                if base
                else json.loads((folder / "adapter_config.json").read_text()).get(
                    "base_model_name_or_path"
                )
            )
            if not base_path:
                raise StageError(
                    f"distill: the teacher adapter at {folder} names no base model",
                    hint="give the teacher as a manifest or a whole model folder",
                )
            teacher = PeftModel.from_pretrained(
                load_causal_lm(str(base_path), "distill"), str(folder)
            ).merge_and_unload()
        else:
            teacher = load_causal_lm(str(folder), "distill")
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher
