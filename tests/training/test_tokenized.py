"""Token ids stored by the tokenize stage: the same rendering as before, packing that keeps every
record to itself, and a loss mask for assistant-only training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from opensem.training.data import encode_record
from opensem.training.tokenized import (
    PackedCollator,
    Sequence,
    assistant_mask,
    pack,
    padding_fraction,
    read_sequences,
    tokenize,
    write_sequences,
)

CHATS = [
    {
        "messages": [
            {"role": "user", "content": f"How fine for shot {i}?"},
            {"role": "assistant", "content": "Finer than sand, " * (i + 1)},
        ]
    }
    for i in range(5)
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from opensem.training.methods.base import load_tokenizer

    return load_tokenizer(str(tiny_model_dir), "test")


def test_tokenize_is_the_training_rendering_and_stores_byte_stable(
    tokenizer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    sequences = tokenize(CHATS, tokenizer, 64, "all")
    assert [s.ids for s in sequences] == [encode_record(r, tokenizer, 64) for r in CHATS]
    write_sequences(tmp_path / "a", "train", sequences, {"records": 5})
    write_sequences(tmp_path / "b", "train", tokenize(CHATS, tokenizer, 64, "all"), {"records": 5})
    assert (tmp_path / "a" / "train.npz").read_bytes() == (
        tmp_path / "b" / "train.npz"
    ).read_bytes()  # equal input, equal bytes: early cutoff works
    assert [s.ids for s in read_sequences(tmp_path / "a", "train")] == [s.ids for s in sequences]


def test_assistant_mask_covers_the_answer_only(tokenizer) -> None:  # type: ignore[no-untyped-def]
    ids = encode_record(CHATS[0], tokenizer, 256)
    mask = assistant_mask(CHATS[0], ids, tokenizer)
    answer = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert "Finer than sand" in answer and "How fine" not in answer and 0 < sum(mask) < len(ids)
    assert assistant_mask({"text": "a document"}, [1, 2, 3], tokenizer) == [1, 1, 1]


def test_packing_keeps_records_apart(tokenizer, tiny_model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM

    sequences = tokenize(CHATS, tokenizer, 256, "all")
    packed = pack(sequences, 256)
    assert len(packed) < len(sequences) and sum(len(p.lengths) for p in packed) == len(sequences)
    assert padding_fraction(packed, 8) < padding_fraction(sequences, 8)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    collate = PackedCollator(tokenizer.pad_token_id)
    batch = collate(
        [{"input_ids": p.ids, "loss_mask": p.loss, "seq_lengths": p.lengths} for p in packed]
    )
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        start = 0
        for sequence in sequences[
            : packed[0].lengths.__len__()
        ]:  # the records of the first packed row
            alone = model(input_ids=torch.tensor([sequence.ids])).logits[0]
            assert torch.allclose(
                logits[0, start : start + len(sequence.ids)], alone, atol=1e-4
            )  # no attention across the boundary
            assert batch["labels"][0, start] == -100 and batch["position_ids"][0, start] == 0
            start += len(sequence.ids)


def test_loss_mask_reaches_the_labels() -> None:
    batch = PackedCollator(0)(
        [
            {"input_ids": [5, 6, 7, 8], "loss_mask": [0, 0, 1, 1], "seq_lengths": [4]},
            {"input_ids": [9, 10], "loss_mask": [1, 1], "seq_lengths": [2]},
        ]
    )
    assert batch["labels"].tolist() == [[-100, -100, 7, 8], [-100, 10, -100, -100]]
    assert batch["attention_mask"].shape == (2, 1, 4, 4) and not batch["attention_mask"][1, 0, 3, 0]
    assert Sequence([1], [1], [1]).lengths == [1]
