"""Normalized records: loading them, checking their shape, and rendering them to token ids.

Training and evaluation both call encode_records, so the tuned model is scored on exactly the
token sequences it was trained to predict: same chat template, same BOS/EOS handling, same
truncation. A mismatch there would make every loss comparison meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opensem.data.formats import ROLES as CHAT_ROLES
from opensem.data.formats import record_kind
from opensem.data.records import RecordSet, read_records
from opensem.errors import DataError, Location

_STRING_FIELDS = ("prompt", "chosen", "rejected", "completion")


def load_records(path: Path) -> RecordSet:
    """The normalized records a stage trains or evaluates on; an empty file is an error."""
    return read_records(path, allow_empty=False, hint="check the ingest and split stages")


def _fits(record: dict[str, Any], shapes: tuple[tuple[str, ...], ...]) -> bool:
    return any(all(name in record for name in alternative) for alternative in shapes)


def _message_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return f"messages[{index}] must be an object with a string content"
        if message.get("role") not in CHAT_ROLES:
            return f"messages[{index}].role must be one of {', '.join(CHAT_ROLES)}, got {message.get('role')!r}"
    return None


def check_shapes(records: RecordSet, shapes: tuple[tuple[str, ...], ...], who: str) -> None:
    """Fail with DataError unless every record fits one of shapes; runs before any model loads."""
    wanted = " | ".join(", ".join(alternative) for alternative in shapes)
    bad = [i for i, record in enumerate(records.records) if not _fits(record, shapes)]
    if bad:
        first = records.records[bad[0]]
        kinds = sorted({record_kind(records.records[i], "unknown") for i in bad})
        raise DataError(
            f"{who}: {len(bad)} of {len(records)} records lack the fields it needs ({wanted}); "
            f"first has {', '.join(sorted(first)) or 'no fields'} "
            f"({kinds[0] if len(kinds) == 1 else ' and '.join(kinds)} records)",
            Location(file=str(records.path), line=records.lines[bad[0]]),
            hint=(
                f"{who} trains on records with: {wanted}; choose a method that takes this data, or "
                "feed it other records"
            ),
        )
    wanted_fields = {name for alternative in shapes for name in alternative}
    for record, line in zip(records.records, records.lines):
        problem = None
        if "messages" in record and "messages" in wanted_fields:
            problem = _message_problem(record["messages"])
        elif "text" in record and "text" in wanted_fields and not isinstance(record["text"], str):
            problem = "text must be a string"
        else:
            problem = _pair_problem(record, wanted_fields)
        if problem:
            raise DataError(f"{who}: {problem}", Location(file=str(records.path), line=line))


def _pair_problem(record: dict[str, Any], wanted: set[str]) -> str | None:
    """What is wrong with a preference or feedback record's fields, if anything."""
    for name in _STRING_FIELDS:
        if (
            name in wanted
            and name in record
            and not (isinstance(record[name], str) and record[name].strip())
        ):
            return f"{name} must be a non-empty string"
    if (
        "label" in wanted
        and "label" in record
        and "completion" in record
        and not isinstance(record["label"], bool)
    ):
        return (
            f"label must be true (a good completion) or false (a bad one), got {record['label']!r}"
        )
    return None


def _turn(role: str, content: str, chat: bool) -> Any:
    return [{"role": role, "content": content}] if chat else content


def _prompt(record: dict[str, Any], chat: bool) -> Any:
    """A preference or feedback record's prompt, after its persona (system message) when it has one."""
    system = record.get("system")
    if chat:
        return ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": record["prompt"]}
        ]
    return f"{system}\n\n{record['prompt']}" if system else record["prompt"]


def preference_rows(records: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """prompt/chosen/rejected rows for trl's preference trainers.

    With a chat template the rows are conversational, so trl renders the prompt through the same
    template SFT training and evaluation use; without one they stay plain text.
    """
    chat = bool(getattr(tokenizer, "chat_template", None))
    return [
        {
            "prompt": _prompt(r, chat),
            "chosen": _turn("assistant", r["chosen"], chat),
            "rejected": _turn("assistant", r["rejected"], chat),
        }
        for r in records
    ]


def feedback_rows(records: list[dict[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
    """prompt/completion/label rows for KTO: native feedback records as they are, each preference
    pair as its chosen answer (label true) followed by its rejected one (label false)."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    rows: list[dict[str, Any]] = []
    for r in records:
        pairs = (
            [(r["completion"], r["label"])]
            if "completion" in r
            else [(r["chosen"], True), (r["rejected"], False)]
        )
        rows.extend(
            {"prompt": _prompt(r, chat), "completion": _turn("assistant", c, chat), "label": label}
            for c, label in pairs
        )
    return rows


def render_text(record: dict[str, Any], tokenizer: Any) -> str:
    """The text a causal LM trains on for one record: chats through the chat template, documents as-is."""
    if "messages" in record:
        if not getattr(tokenizer, "chat_template", None):
            raise DataError(
                "instruction records need a tokenizer with a chat template, and this base model has none",
                hint="use an instruct base model, or documents ({'text': ...}) records",
            )
        return str(tokenizer.apply_chat_template(record["messages"], tokenize=False))
    if "text" in record:
        return str(record["text"])
    raise DataError(
        f"a {record_kind(record, 'unknown')} record is not language-modeling data (needs messages or text)",
        hint="preference records train through a preference method (dpo, orpo, kto)",
    )


def encode_record(record: dict[str, Any], tokenizer: Any, max_length: int) -> list[int]:
    """Token ids of one record: BOS once, EOS after documents, truncated from the end to max_length."""
    text = render_text(record, tokenizer)
    bos = tokenizer.bos_token
    # Chat templates of real instruct models often start with BOS themselves; never add a second.
    add_special = not (bos and text.startswith(bos))
    ids = list(tokenizer(text, add_special_tokens=add_special)["input_ids"])
    eos_id = tokenizer.eos_token_id
    if "messages" not in record and eos_id is not None and (not ids or ids[-1] != eos_id):
        ids.append(eos_id)  # documents end with EOS, as trl does for text datasets
    return ids[:max_length]


def encode_records(
    records: RecordSet | list[dict[str, Any]], tokenizer: Any, max_length: int, batch: int = 1024
) -> list[list[int]]:
    """Token ids for every record, as encode_record gives them; the one rendering shared by training
    and evaluation. Texts go to the tokenizer in batches, which a fast tokenizer splits across cores."""
    items = records.records if isinstance(records, RecordSet) else records
    texts = [render_text(record, tokenizer) for record in items]
    bos, eos_id = tokenizer.bos_token, tokenizer.eos_token_id
    out: list[list[int]] = []
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        special = [not (bos and text.startswith(bos)) for text in chunk]
        encoded: list[list[int] | None] = [None] * len(chunk)
        # One call per setting: the tokenizer takes add_special_tokens per call
        for flag in (True, False):
            positions = [i for i, value in enumerate(special) if value is flag]
            if positions:
                for i, ids in zip(
                    positions,
                    tokenizer([chunk[i] for i in positions], add_special_tokens=flag)["input_ids"],
                ):
                    encoded[i] = list(ids)
        for record, ids in zip(items[start : start + batch], encoded):
            assert ids is not None
            if "messages" not in record and eos_id is not None and (not ids or ids[-1] != eos_id):
                ids.append(eos_id)  # documents end with EOS, as trl does for text datasets
            out.append(ids[:max_length])
    return out
