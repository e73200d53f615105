"""Distillation: both loss parts logged and adding up, the teacher frozen, tokenizers checked, the loss
right by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from opensem.core.digests import digest_tree
from opensem.errors import StageError
from opensem.training.methods import get_method
from opensem.training.methods.base import TrainRequest
from opensem.training.methods.distill import DistillOptions
from opensem.training.tiny import make_tiny_model
from tests.training.methods.test_lora import chats
from tests.training.params import train_params


@pytest.fixture(scope="module")
def teacher(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fine-tuned in full on the chats: it knows the answers the student does not."""
    out = tmp_path_factory.mktemp("teacher")
    settings = train_params("sft", max_steps=30, learning_rate=5e-3, batch_size=8)
    get_method("sft").train(
        TrainRequest(str(tiny_model_dir), chats(32), out / "model", out / "work", settings)
    )
    return out


def distill(student: Path, teacher: Path, out: Path, **settings: object) -> object:
    settings = {
        "rank": 4,
        "max_steps": 8,
        "logging_steps": 2,
        "batch_size": 8,
        "learning_rate": 5e-3,
        **settings,
    }
    params = train_params("distill", teacher=str(teacher), **settings)
    return get_method("distill").train(
        TrainRequest(str(student), chats(32), out / "adapter", out / "work", params)
    )


def test_both_loss_parts_are_logged_and_make_up_the_loss_while_the_teacher_stays_frozen(
    tiny_model_dir: Path, teacher: Path, tmp_path: Path
) -> None:
    before = digest_tree(teacher / "model")
    outcome = distill(tiny_model_dir, teacher, tmp_path, distill_alpha=0.7, temperature=2.0)
    rows = [row for row in outcome.log if "loss" in row]
    assert [row["step"] for row in rows] == [1, 2, 4, 6, 8] and all(
        {"loss_soft", "loss_hard"} <= set(row) and "loss_hidden" not in row for row in rows
    )
    for row in rows:
        assert row["loss"] == pytest.approx(
            0.7 * row["loss_soft"] + 0.3 * row["loss_hard"], rel=2e-3
        )
    assert rows[-1]["loss_soft"] < rows[0]["loss_soft"]  # the student moves toward the teacher
    assert (
        digest_tree(teacher / "model") == before
        and (tmp_path / "adapter" / "adapter_config.json").is_file()
    )


def test_hidden_state_matching_adds_its_part_and_needs_one_width(
    tiny_model_dir: Path, teacher: Path, tmp_path: Path
) -> None:
    outcome = distill(tiny_model_dir, teacher, tmp_path / "same", hidden_weight=1.0, max_steps=2)
    assert all("loss_hidden" in row for row in outcome.log if "loss" in row)
    narrow = make_tiny_model(
        tmp_path / "narrow", hidden_size=32, num_heads=2
    )  # the same tokenizer, another width
    with pytest.raises(
        StageError, match="equal hidden sizes; the teacher has 32, the student 64"
    ) as caught:
        distill(tiny_model_dir, narrow, tmp_path / "narrow-run", hidden_weight=1.0, max_steps=2)
    assert "hidden_weight: 0" in caught.value.hint


def test_a_teacher_with_another_tokenizer_is_refused_before_training(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    other = make_tiny_model(tmp_path / "other", vocab_size=700)
    with pytest.raises(
        StageError, match="the teacher's tokenizer is not the student's: vocabularies differ"
    ):
        distill(tiny_model_dir, other, tmp_path / "run")
    assert not (tmp_path / "run" / "work").exists()


def test_the_loss_matches_a_hand_computation() -> None:
    import torch

    from opensem.training.methods.distill_trainer import distillation_loss

    torch.manual_seed(0)
    student, teacher = (
        torch.randn(1, 4, 5),
        torch.randn(1, 4, 7),
    )  # the teacher's head padded past the vocabulary
    labels = torch.tensor([[-100, -100, 2, 3]])  # positions 1 and 2 predict labelled tokens
    soft, hard = distillation_loss(student, teacher, labels, temperature=2.0, alpha=0.5)
    s, t = student[0, 1:3] / 2, teacher[0, 1:3, :5] / 2
    p_t = torch.softmax(t, -1)
    expected = (p_t * (torch.log(p_t) - torch.log_softmax(s, -1))).sum(-1).mean() * 4
    assert float(soft) == pytest.approx(float(expected), rel=1e-5)
    assert float(hard) == pytest.approx(
        float(torch.nn.functional.cross_entropy(student[0, 1:3], torch.tensor([2, 3]))), rel=1e-5
    )
    same, _ = distillation_loss(student, student, labels, temperature=3.0, alpha=0.5)
    assert float(same) == pytest.approx(0.0, abs=1e-6)


def test_options_refuse_a_loss_with_nothing_of_the_teacher() -> None:
    with pytest.raises(ValidationError, match="leave nothing of the teacher"):
        DistillOptions(teacher="some/model", distill_alpha=0)
    assert (
        DistillOptions(teacher="some/model", distill_alpha=0, hidden_weight=0.5).hidden_weight
        == 0.5
    )
