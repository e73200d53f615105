"""Preference and feedback ids: what trl itself would build, stored byte-stable, and trained on without
trl tokenizing again."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from opensem.training.methods import get_method
from opensem.training.methods.base import TrainRequest
from opensem.training.paired_tokens import orpo_rows, paired_rows, read_rows, write_rows
from tests.training.methods.test_lora import preferences
from tests.training.methods.test_methods import feedback
from tests.training.params import train_params


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from opensem.training.methods.base import load_tokenizer

    return load_tokenizer(str(tiny_model_dir), "test")


def trl_prepared(trainer: str, rows: list[dict], tokenizer, tmp_path: Path) -> list[dict]:  # type: ignore[no-untyped-def]
    """trl's own _prepare_dataset on the rows opensem hands it when it does not pre-tokenize."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    config, cls = (DPOConfig, DPOTrainer) if trainer == "dpo" else (KTOConfig, KTOTrainer)
    args = config(
        output_dir=str(tmp_path), max_length=None, report_to="none", bf16=False, use_cpu=True
    )
    fake = types.SimpleNamespace(
        _tokenizer=tokenizer, calculate_KL=False, desirable_weight=1.0, undesirable_weight=1.0
    )
    return cls._prepare_dataset(fake, Dataset.from_list(rows), tokenizer, args, "train").to_list()


def test_preference_ids_are_the_ones_trls_dpo_builds(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from opensem.training.data import preference_rows

    records = [
        {**r, "system": "You are terse."} if i == 0 else r for i, r in enumerate(preferences(6))
    ]
    ours = paired_rows(records, tokenizer, "preference")
    theirs = trl_prepared("dpo", preference_rows(records, tokenizer), tokenizer, tmp_path)
    assert ours == [
        {key: row[key] for key in ("prompt_ids", "chosen_ids", "rejected_ids")} for row in theirs
    ]
    assert all(row["prompt_ids"] and row["chosen_ids"] and row["rejected_ids"] for row in ours)


def test_feedback_ids_are_the_ones_trls_kto_builds(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from opensem.training.data import feedback_rows

    records = feedback(4) + preferences(
        2
    )  # native feedback, and pairs split into a good and a bad answer
    ours = paired_rows(records, tokenizer, "feedback")
    theirs = trl_prepared("kto", feedback_rows(records, tokenizer), tokenizer, tmp_path)
    assert len(ours) == 8 and ours == [
        {key: row[key] for key in ("prompt_ids", "completion_ids", "label")} for row in theirs
    ]


def test_rows_round_trip_byte_stable(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = paired_rows(feedback(5), tokenizer, "feedback")
    write_rows(tmp_path / "a", "train", rows, "feedback", {"records": 5})
    write_rows(tmp_path / "b", "train", rows, "feedback", {"records": 5})
    assert (tmp_path / "a" / "train.npz").read_bytes() == (
        tmp_path / "b" / "train.npz"
    ).read_bytes()
    assert read_rows(tmp_path / "a", "train") == rows


def test_orpo_columns_mask_the_prompt_and_fit_the_length() -> None:
    [row] = orpo_rows(
        [{"prompt_ids": [1, 2, 3], "chosen_ids": [4, 5, 6], "rejected_ids": [7]}], max_length=5
    )
    assert row["chosen_input_ids"] == [1, 2, 3, 4, 5] and row["chosen_labels"] == [
        -100,
        -100,
        -100,
        4,
        5,
    ]
    assert row["rejected_input_ids"] == [1, 2, 3, 7] and row["rejected_attention_mask"] == [
        1,
        1,
        1,
        1,
    ]


@pytest.mark.parametrize(
    ("name", "shape", "records"),
    [
        ("dpo", "preference", preferences(16)),
        ("orpo", "preference", preferences(16)),
        ("kto", "feedback", feedback(16)),
    ],
)
def test_preference_methods_train_on_stored_ids_without_tokenizing(
    name: str,
    shape: str,
    records: list[dict],
    tiny_model_dir: Path,
    tokenizer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    rows = paired_rows(records, tokenizer, shape)
    write_rows(tmp_path / "tokens", "train", rows, shape, {})
    calls: list[str] = []
    original = type(tokenizer).apply_chat_template
    monkeypatch.setattr(
        type(tokenizer),
        "apply_chat_template",
        lambda self, *a, **k: calls.append("template") or original(self, *a, **k),
    )
    settings = train_params(
        name, rank=4, max_steps=2, logging_steps=1, batch_size=4, learning_rate=5e-3
    )
    outcome = get_method(name).train(
        TrainRequest(
            str(tiny_model_dir),
            read_rows(tmp_path / "tokens", "train"),
            tmp_path / "out",
            tmp_path / "work",
            settings,
        )
    )
    assert (
        outcome.steps == 2
        and (tmp_path / "out" / "adapter_config.json").is_file()
        and outcome.tokens > 0
    )
    assert calls == []  # trl rendered no chat template: the stored ids were used as they are
    if name == "dpo":  # and the check can fail: raw records go through the template inside trl
        get_method(name).train(
            TrainRequest(
                str(tiny_model_dir), records, tmp_path / "raw", tmp_path / "work-raw", settings
            )
        )
        assert calls
