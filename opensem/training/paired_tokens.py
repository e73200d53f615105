"""Token ids of preference and feedback records, split where trl's trainers split them.

A preference record becomes prompt_ids, chosen_ids and rejected_ids; a feedback record (or each
half of a pair, for KTO) prompt_ids, completion_ids and its label. The prompt is rendered through
the chat template with the generation prompt, the prompt plus answer as one conversation, and the
answer starts where the two stop agreeing (some templates render a prompt alone differently):
the rule trl's DPOTrainer and KTOTrainer apply, so a stored row is what they would have built.
Rows are stored as flat int32 arrays with offsets per column (one read for 100,000 rows, equal
input giving equal bytes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from opensem.core.files import write_atomic

ROW_COLUMNS = {
    "preference": ("prompt_ids", "chosen_ids", "rejected_ids"),
    "feedback": ("prompt_ids", "completion_ids"),
}


def _ids(tokenizer: Any, text: Any, generation_prompt: bool = False) -> list[int]:
    if isinstance(text, list):  # a conversation
        return list(
            tokenizer.apply_chat_template(
                text, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
            )["input_ids"]
        )
    return list(tokenizer(text=text)["input_ids"])


def _common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def _with_eos(answer: Any, tokenizer: Any) -> Any:
    """Plain-text answers end with EOS, as trl appends it; a chat template ends a turn itself."""
    if isinstance(answer, str) and tokenizer.eos_token and not answer.endswith(tokenizer.eos_token):
        return answer + tokenizer.eos_token
    return answer


def paired_rows(records: list[dict[str, Any]], tokenizer: Any, shape: str) -> list[dict[str, Any]]:
    """preference: {prompt_ids, chosen_ids, rejected_ids}; feedback: {prompt_ids, completion_ids, label}."""
    from opensem.training.data import feedback_rows, preference_rows

    out: list[dict[str, Any]] = []
    if shape == "preference":
        for row in preference_rows(records, tokenizer):
            prompt = _ids(tokenizer, row["prompt"], generation_prompt=True)
            chosen = _ids(tokenizer, row["prompt"] + _with_eos(row["chosen"], tokenizer))
            rejected = _ids(tokenizer, row["prompt"] + _with_eos(row["rejected"], tokenizer))
            cut = min(_common_prefix(prompt, chosen), _common_prefix(prompt, rejected))
            out.append(
                {
                    "prompt_ids": prompt[:cut],
                    "chosen_ids": chosen[cut:],
                    "rejected_ids": rejected[cut:],
                }
            )
        return out
    for row in feedback_rows(records, tokenizer):
        prompt = _ids(tokenizer, row["prompt"], generation_prompt=True)
        full = _ids(tokenizer, row["prompt"] + _with_eos(row["completion"], tokenizer))
        cut = _common_prefix(prompt, full)
        out.append(
            {"prompt_ids": prompt[:cut], "completion_ids": full[cut:], "label": bool(row["label"])}
        )
    return out


def write_rows(
    folder: Path, name: str, rows: list[dict[str, Any]], shape: str, meta: dict[str, Any]
) -> None:
    """<name>.npz (each id column flat with its offsets, labels) and <name>.json (counts and settings)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for column in ROW_COLUMNS[shape]:
        arrays[column] = np.fromiter((t for row in rows for t in row[column]), dtype=np.int32)
        arrays[f"{column}_offsets"] = np.cumsum(
            [0, *(len(row[column]) for row in rows)], dtype=np.int64
        )
    if shape == "feedback":
        arrays["label"] = np.array([row["label"] for row in rows], dtype=np.bool_)
    with (folder / f"{name}.npz").open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy stubs: **arrays are arrays
    tokens = sum(int(arrays[c].size) for c in ROW_COLUMNS[shape])
    write_atomic(
        folder / f"{name}.json",
        json.dumps(
            {**meta, "shape": shape, "rows": len(rows), "sequences": len(rows), "tokens": tokens},
            sort_keys=True,
            indent=2,
        ),
    )


def read_rows(folder: Path, name: str) -> list[dict[str, Any]]:
    """The tokenize stage's paired rows (preference or feedback) read back."""
    shape = json.loads((folder / f"{name}.json").read_text())["shape"]
    with np.load(folder / f"{name}.npz") as data:
        columns = {c: (data[c], data[f"{c}_offsets"]) for c in ROW_COLUMNS[shape]}
        labels = data["label"].tolist() if shape == "feedback" else None
    count = len(next(iter(columns.values()))[1]) - 1
    rows = [
        {c: flat[offsets[i] : offsets[i + 1]].tolist() for c, (flat, offsets) in columns.items()}
        for i in range(count)
    ]
    if labels is not None:
        for row, label in zip(rows, labels):
            row["label"] = bool(label)
    return rows


def orpo_rows(rows: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """Preference rows in the columns trl's ORPOTrainer builds per row: prompt + answer, the prompt masked
    out of the labels, the answer cut to fit max_length."""
    out = []
    for row in rows:
        prompt = row["prompt_ids"]
        built: dict[str, Any] = {
            "prompt_input_ids": prompt,
            "prompt_attention_mask": [1] * len(prompt),
        }
        for side in ("chosen", "rejected"):
            answer = row[f"{side}_ids"][: max(0, max_length - len(prompt))]
            ids = prompt + answer
            built |= {
                f"{side}_input_ids": ids,
                f"{side}_attention_mask": [1] * len(ids),
                f"{side}_labels": [-100] * len(prompt) + answer,
            }
        out.append(built)
    return out
