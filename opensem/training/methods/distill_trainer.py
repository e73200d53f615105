"""The distillation loss inside a transformers Trainer, with each part of it logged.

Kept apart from distill.py so the method's options load without torch or transformers.
"""

from __future__ import annotations

from typing import Any

from opensem.errors import StageError


def distillation_loss(
    student: Any, teacher: Any, labels: Any, temperature: float, alpha: float
) -> tuple[Any, Any]:
    """(soft, hard): T^2 * KL(teacher_T || student_T) and the cross-entropy, over the labelled positions only.

    Logits at position i predict token i + 1, so position i counts when labels[i + 1] is set.
    A teacher whose embedding matrix is padded past the tokenizer is cut to the student's width.
    """
    import torch.nn.functional as F

    width = student.shape[-1]
    keep = labels[:, 1:] != -100
    s = student[:, :-1][keep].float()
    t = teacher[:, :-1, :width][keep].float()
    target = labels[:, 1:][keep]
    hard = F.cross_entropy(s, target) if alpha < 1 else s.new_zeros(())
    soft = (
        F.kl_div(
            F.log_softmax(s / temperature, -1),
            F.log_softmax(t / temperature, -1),
            reduction="batchmean",
            log_target=True,
        )
        * temperature**2
    )
    return soft, hard


def distill_trainer(
    model: Any,
    teacher: Any,
    options: Any,
    args: Any,
    dataset: Any,
    eval_dataset: Any,
    tokenizer: Any,
    collator: Any,
) -> Any:
    """A Trainer whose loss is distill_alpha * soft + (1 - distill_alpha) * hard (+ hidden_weight * hidden MSE)."""
    import torch
    from transformers import Trainer

    hidden = options.hidden_weight > 0
    if hidden and teacher.config.hidden_size != model.config.hidden_size:
        raise StageError(
            "distill: hidden-state matching needs equal hidden sizes; the teacher has "
            f"{teacher.config.hidden_size}, the student {model.config.hidden_size}",
            hint="set method_config.hidden_weight: 0, or pick a teacher of the student's width",
        )

    class DistillTrainer(Trainer):
        parts: dict[str, float]
        counted: int

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs["labels"]
            outputs = model(
                **{k: v for k, v in inputs.items() if k != "labels"}, output_hidden_states=hidden
            )
            if next(teacher.parameters()).device != outputs.logits.device:
                teacher.to(outputs.logits.device)
            with torch.no_grad():
                taught = teacher(
                    **{k: v for k, v in inputs.items() if k != "labels"},
                    output_hidden_states=hidden,
                )
            soft, hard = distillation_loss(
                outputs.logits, taught.logits, labels, options.temperature, options.distill_alpha
            )
            loss = options.distill_alpha * soft + (1 - options.distill_alpha) * hard
            mse = None
            if hidden:
                keep = labels != -100
                mse = torch.nn.functional.mse_loss(
                    outputs.hidden_states[-1][keep].float(), taught.hidden_states[-1][keep].float()
                )
                loss = loss + options.hidden_weight * mse
            if model.training:
                self._remember(soft, hard, mse)
            return (loss, outputs) if return_outputs else loss

        def _remember(self, soft: Any, hard: Any, mse: Any) -> None:
            if not hasattr(self, "parts"):
                self.parts, self.counted = {}, 0
            values = {
                "loss_soft": soft,
                "loss_hard": hard,
                **({"loss_hidden": mse} if mse is not None else {}),
            }
            for key, value in values.items():
                self.parts[key] = self.parts.get(key, 0.0) + float(value.detach())
            self.counted += 1

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if "loss" in logs and getattr(self, "counted", 0) > 0:
                logs = {
                    **logs,
                    **{key: round(total / self.counted, 4) for key, total in self.parts.items()},
                }
                self.parts, self.counted = {}, 0
            super().log(logs, *args, **kwargs)

    trainer = DistillTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=collator,
    )
    trainer.model_accepts_loss_kwargs = (
        False  # the loss is a per-batch mean: the trainer divides it over accumulation steps
    )
    return trainer
