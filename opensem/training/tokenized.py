"""Tokenized training data: the token ids of every record, rendered once and stored by lot.

Records are rendered exactly as training always rendered them (opensem.training.data: chats
through the chat template, documents as text with EOS) and stored as numpy arrays (ids, a loss
mask, sequence offsets), so equal input gives equal bytes and loading 100,000 sequences is one
read. With packing, records are laid end to end into sequences of up to max_seq_length (a record
never split), and each sequence keeps the lengths of its records: the collator turns them into a
block-diagonal causal mask and restarting positions, so no token attends across a record boundary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from opensem.core.files import write_atomic


@dataclass
class Sequence:
    ids: list[int]
    loss: list[int]  # 1 where the token is learned, 0 where it is only context
    lengths: list[int]  # the records laid into this sequence (one, unpacked)


def assistant_mask(record: dict[str, Any], ids: list[int], tokenizer: Any) -> list[int]:
    """1 on the tokens of the assistant's turns of a chat (the rest is the prompt), 1 everywhere for a document."""
    if "messages" not in record:
        return [1] * len(ids)
    mask = [0] * len(ids)
    messages = record["messages"]
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = len(
            tokenizer.apply_chat_template(
                messages[:index], tokenize=True, add_generation_prompt=True, return_dict=True
            )["input_ids"]
        )
        through = len(
            tokenizer.apply_chat_template(messages[: index + 1], tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        for position in range(min(before, len(ids)), min(through, len(ids))):
            mask[position] = 1
    return mask


def tokenize(
    records: list[dict[str, Any]],
    tokenizer: Any,
    max_length: int,
    loss_on: str,
    keep_short: bool = False,
) -> list[Sequence]:
    """One sequence per record, truncated to max_length; those under two tokens (nothing to learn)
    are dropped unless keep_short (the test split keeps one sequence per record, in order)."""
    from opensem.training.data import encode_records

    out = []
    for record, ids in zip(records, encode_records(records, tokenizer, max_length)):
        if len(ids) < 2 and not keep_short:
            continue
        loss = assistant_mask(record, ids, tokenizer) if loss_on == "assistant" else [1] * len(ids)
        out.append(Sequence(ids, loss, [len(ids)]))
    return out


def pack(sequences: Iterable[Sequence], max_length: int) -> list[Sequence]:
    """Lay records end to end into sequences of at most max_length, in order (first fit on the last one)."""
    packed: list[Sequence] = []
    for sequence in sequences:
        if packed and len(packed[-1].ids) + len(sequence.ids) <= max_length:
            last = packed[-1]
            last.ids, last.loss, last.lengths = (
                last.ids + sequence.ids,
                last.loss + sequence.loss,
                last.lengths + sequence.lengths,
            )
        else:
            packed.append(Sequence(list(sequence.ids), list(sequence.loss), list(sequence.lengths)))
    return packed


def write_sequences(
    folder: Path, name: str, sequences: list[Sequence], meta: dict[str, Any]
) -> None:
    """<name>.npz (ids, loss, offsets, lengths, length offsets) and <name>.json (counts and settings)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.fromiter((t for s in sequences for t in s.ids), dtype=np.int32)
    loss = np.fromiter((t for s in sequences for t in s.loss), dtype=np.int8)
    offsets = np.cumsum([0, *(len(s.ids) for s in sequences)], dtype=np.int64)
    lengths = np.fromiter((n for s in sequences for n in s.lengths), dtype=np.int32)
    length_offsets = np.cumsum([0, *(len(s.lengths) for s in sequences)], dtype=np.int64)
    with (folder / f"{name}.npz").open(
        "wb"
    ) as handle:  # np.savez_compressed is zip with timestamps: not byte-stable
        np.savez(
            handle,
            ids=ids,
            loss=loss,
            offsets=offsets,
            lengths=lengths,
            length_offsets=length_offsets,
        )
    write_atomic(
        folder / f"{name}.json",
        json.dumps(
            {**meta, "sequences": len(sequences), "tokens": int(ids.size)}, sort_keys=True, indent=2
        ),
    )


def read_sequences(folder: Path, name: str) -> list[Sequence]:
    """The tokenize stage's sequences read back."""
    with np.load(folder / f"{name}.npz") as data:
        ids, loss, offsets = data["ids"], data["loss"], data["offsets"]
        lengths, length_offsets = data["lengths"], data["length_offsets"]
        return [
            Sequence(
                ids[offsets[i] : offsets[i + 1]].tolist(),
                loss[offsets[i] : offsets[i + 1]].tolist(),
                lengths[length_offsets[i] : length_offsets[i + 1]].tolist(),
            )
            for i in range(len(offsets) - 1)
        ]


def training_rows(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(train rows, validation rows or None) of a tokenize stage's output, as the methods' datasets take them."""
    if json.loads((folder / "train.json").read_text()).get("shape", "sft") != "sft":
        from opensem.training.paired_tokens import read_rows

        return read_rows(folder, "train"), None
    rows = [
        {"input_ids": s.ids, "loss_mask": s.loss, "seq_lengths": s.lengths}
        for s in read_sequences(folder, "train")
    ]
    if not (folder / "validation.npz").is_file():
        return rows, None
    return rows, [
        {"input_ids": s.ids, "loss_mask": s.loss, "seq_lengths": [len(s.ids)]}
        for s in read_sequences(folder, "validation")
    ]


def padding_fraction(sequences: list[Sequence], batch_size: int) -> float:
    """Share of a batch's tensor that is padding, batches taken in order (what a trainer pays for)."""
    padded = real = 0
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        width = max(len(s.ids) for s in batch)
        padded += width * len(batch)
        real += sum(len(s.ids) for s in batch)
    return 1 - real / padded if padded else 0.0


class PackedCollator:
    """Batches of packed sequences: right padding, a block-diagonal causal 4D mask, positions that
    restart at every record, and labels that never ask a record to predict the next record's first token."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Pad a batch of sequences into tensors, with the attention mask and labels."""
        import torch

        width = max(len(row["input_ids"]) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), 1, width, width), dtype=torch.bool)
        for row_index, row in enumerate(rows):
            start = 0
            for length in row["seq_lengths"]:
                end = start + length
                ids[row_index, start:end] = torch.tensor(row["input_ids"][start:end])
                learn = torch.tensor(row["loss_mask"][start:end], dtype=torch.bool)
                labels[row_index, start:end] = torch.where(
                    learn, ids[row_index, start:end], torch.tensor(-100)
                )
                labels[
                    row_index, start
                ] = -100  # the first token of a record is never a prediction target
                positions[row_index, start:end] = torch.arange(length)
                mask[row_index, 0, start:end, start:end] = torch.tril(
                    torch.ones(length, length, dtype=torch.bool)
                )
                start = end
        return {
            "input_ids": ids,
            "labels": labels,
            "position_ids": positions,
            "attention_mask": mask,
        }
