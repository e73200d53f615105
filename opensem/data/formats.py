"""Dataset formats: recognise alpaca, sharegpt, messages, dpo, kto and text records, and convert them.

Every input record becomes one normalized record of four kinds, the contract with training:

- instruction: {"id", "source", "messages": [{"role", "content"}, ...]}
- document:    {"id", "source", "text"}
- preference:  {"id", "source", "prompt", "chosen", "rejected"}
- feedback:    {"id", "source", "prompt", "completion", "label"}  (KTO: one answer, good or bad)

The id is derived from the content fields only, so identical content gets the same id wherever it
comes from, and an id never changes because some other record changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opensem.core.digests import canonical_json, sha256_text
from opensem.errors import DataError, Location

FORMATS: tuple[str, ...] = ("text", "alpaca", "sharegpt", "messages", "kto", "dpo")
ROLES: tuple[str, ...] = ("system", "user", "assistant")
# ShareGPT speaker names seen in the wild, mapped onto chat roles.
SHAREGPT_ROLES: dict[str, str] = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
}
_SHAREGPT_NAMES: dict[str, str] = {"system": "system", "user": "human", "assistant": "gpt"}
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "instruction": ("messages",),
    "document": ("text",),
    "preference": ("prompt", "chosen", "rejected"),
    "feedback": ("prompt", "completion", "label"),
}


def record_id(content: Mapping[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the canonical JSON of a record's content fields."""
    fields = {k: v for k, v in content.items() if k not in ("id", "source")}
    return sha256_text(canonical_json(fields))[:16]


def record_kind(record: Mapping[str, Any], unknown: str | None = None) -> str:
    """instruction, document, preference or feedback: which normalized kind a record is; for any
    other record, `unknown` when given, else DataError."""
    for kind, fields in _KIND_FIELDS.items():
        if all(f in record for f in fields):
            return kind
    if unknown is not None:
        return unknown
    raise DataError(f"not a normalized record: expected one of the fields {sorted(_KIND_FIELDS)}")


def detect_format(record: Mapping[str, Any], where: Location | None = None) -> str:
    """Name the format of a raw record from its keys; the most specific shape wins."""
    if not isinstance(record, Mapping):
        raise DataError(f"expected a JSON object, got {type(record).__name__}", where)
    if "chosen" in record and "rejected" in record:
        return "dpo"
    if "completion" in record and "label" in record:
        return "kto"
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        return "messages"
    if "instruction" in record:
        return "alpaca"
    if "text" in record:
        return "text"
    keys = ", ".join(sorted(str(k) for k in record)) or "none"
    raise DataError(
        f"cannot tell the format of a record with keys: {keys}",
        where,
        hint="records need instruction/output (alpaca), conversations (sharegpt), messages, "
        "prompt/chosen/rejected (dpo), prompt/completion/label (kto) or text; or name the format on the source",
    )


def make_record(source: str, **content: Any) -> dict[str, Any]:
    """A normalized record with its id and source filled in."""
    return {"id": record_id(content), "source": source, **content}


def normalize(
    record: Mapping[str, Any],
    fmt: str,
    source: str,
    line: int | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Turn one raw record of format fmt into a normalized record; DataError says what is missing where."""
    where = Location(file=source, line=line, key=key)
    if fmt not in FORMATS:
        raise DataError(
            f"unknown format {fmt!r}", where, hint=f"use one of: auto, {', '.join(FORMATS)}"
        )
    try:
        return _normalize(record, fmt, source, where)
    except DataError as exc:
        # Formats are detected from a file's first record, so say which format a later record was read as.
        hint = f"read as {fmt} (named on the source, or detected from the file's first record)"
        raise DataError(
            exc.message, exc.location, hint=f"{exc.hint}; {hint}" if exc.hint else hint
        ) from None


def _normalize(record: Mapping[str, Any], fmt: str, source: str, where: Location) -> dict[str, Any]:
    """The conversion itself; fmt is one of FORMATS."""
    if not isinstance(record, Mapping):
        raise DataError(f"expected a JSON object, got {type(record).__name__}", where)
    if fmt == "text":
        return make_record(source, text=_string(record, "text", where))
    if fmt == "alpaca":
        return make_record(source, messages=_from_alpaca(record, where))
    if fmt == "sharegpt":
        return make_record(source, messages=_from_sharegpt(record, where))
    if fmt == "messages":
        return make_record(
            source, messages=_check_messages(_list(record, "messages", where), "messages", where)
        )
    if fmt == "kto":
        label = record.get("label")
        if not isinstance(label, bool):
            raise DataError(
                f"field 'label' must be true (a good completion) or false (a bad one), got {label!r}",
                where,
            )
        completion = _side(record, "completion", "assistant", where)
        return make_record(
            source,
            prompt=_side(record, "prompt", "user", where),
            completion=completion,
            label=label,
        )
    return make_record(  # dpo, the last of FORMATS
        source,
        prompt=_side(record, "prompt", "user", where),
        chosen=_side(record, "chosen", "assistant", where),
        rejected=_side(record, "rejected", "assistant", where),
    )


def _string(
    record: Mapping[str, Any], field: str, where: Location, allow_empty: bool = False
) -> str:
    if field not in record:
        raise DataError(f"record has no field {field!r}", where)
    value = record[field]
    if not isinstance(value, str):
        raise DataError(f"field {field!r} must be a string, got {type(value).__name__}", where)
    if not allow_empty and not value.strip():
        raise DataError(f"field {field!r} is empty", where)
    return value


def _list(record: Mapping[str, Any], field: str, where: Location) -> list[Any]:
    if field not in record:
        raise DataError(f"record has no field {field!r}", where)
    value = record[field]
    if not isinstance(value, list) or not value:
        raise DataError(f"field {field!r} must be a non-empty list", where)
    return value


def _from_alpaca(record: Mapping[str, Any], where: Location) -> list[dict[str, str]]:
    """Alpaca: instruction and optional input become the user turn, output the assistant turn."""
    instruction = _string(record, "instruction", where)
    extra = (
        _string(record, "input", where, allow_empty=True) if record.get("input") is not None else ""
    )
    output = _string(record, "output", where)
    system = (
        _string(record, "system", where, allow_empty=True)
        if record.get("system") is not None
        else ""
    )
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages = [{"role": "system", "content": system}] if system.strip() else []
    return [*messages, {"role": "user", "content": user}, {"role": "assistant", "content": output}]


def _from_sharegpt(record: Mapping[str, Any], where: Location) -> list[dict[str, str]]:
    turns = _list(record, "conversations", where)
    messages: list[dict[str, Any]] = []
    system = record.get("system")
    if isinstance(system, str) and system.strip():
        messages.append({"role": "system", "content": system})
    for index, turn in enumerate(turns):
        path = f"conversations[{index}]"
        if not isinstance(turn, Mapping) or "from" not in turn or "value" not in turn:
            raise DataError(f"{path} must be an object with 'from' and 'value'", where)
        role = SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise DataError(
                f"{path}.from is {turn['from']!r}",
                where,
                f"use one of: {', '.join(SHAREGPT_ROLES)}",
            )
        messages.append({"role": role, "content": turn["value"]})
    return _check_messages(messages, "conversations", where)


def _check_messages(messages: list[Any], field: str, where: Location) -> list[dict[str, str]]:
    """Validate a chat: known roles, string contents, and at least one assistant answer to learn."""
    checked: list[dict[str, str]] = []
    for index, message in enumerate(messages):
        path = f"{field}[{index}]"
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise DataError(f"{path} must be an object with 'role' and 'content'", where)
        if message["role"] not in ROLES:
            raise DataError(
                f"{path}.role is {message['role']!r}", where, f"use one of: {', '.join(ROLES)}"
            )
        if not isinstance(message["content"], str):
            raise DataError(
                f"{path}.content must be a string, got {type(message['content']).__name__}", where
            )
        checked.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in checked):
        raise DataError(
            f"field {field!r} has no non-empty assistant message",
            where,
            "a chat needs an answer to learn from",
        )
    return checked


def _side(record: Mapping[str, Any], field: str, role: str, where: Location) -> str:
    """A dpo field as a string: a message list collapses to the content of its last `role` message."""
    value = record.get(field)
    if isinstance(value, list):
        messages = _check_any_messages(value, field, where)
        picked = [m["content"] for m in messages if m["role"] == role]
        if not picked or not picked[-1].strip():
            raise DataError(f"field {field!r} has no non-empty {role} message", where)
        return picked[-1]
    return _string(record, field, where)


def _check_any_messages(messages: list[Any], field: str, where: Location) -> list[dict[str, str]]:
    for index, message in enumerate(messages):
        ok = (
            isinstance(message, Mapping)
            and message.get("role") in ROLES
            and isinstance(message.get("content"), str)
        )
        if not ok:
            raise DataError(
                f"{field}[{index}] must be an object with a known 'role' and a string 'content'",
                where,
            )
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def to_messages(record: Mapping[str, Any]) -> dict[str, Any]:
    """Export as {"messages": [...]}; a preference becomes its prompt and chosen answer."""
    kind = record_kind(record)
    if kind == "instruction":
        return {"messages": [dict(m) for m in record["messages"]]}
    if kind == "preference":
        return {
            "messages": [
                {"role": "user", "content": record["prompt"]},
                {"role": "assistant", "content": record["chosen"]},
            ]
        }
    raise DataError(
        "a document record has no conversation to export", hint="export documents as text records"
    )


def to_sharegpt(record: Mapping[str, Any]) -> dict[str, Any]:
    """Export as {"conversations": [{"from", "value"}]}."""
    turns = [
        {"from": _SHAREGPT_NAMES[m["role"]], "value": m["content"]}
        for m in to_messages(record)["messages"]
    ]
    return {"conversations": turns}


def to_alpaca(record: Mapping[str, Any]) -> dict[str, Any]:
    """Export as alpaca; only an optional system turn plus one user and one assistant turn fit."""
    messages = to_messages(record)["messages"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    rest = messages[1:] if messages[0]["role"] == "system" else messages
    if [m["role"] for m in rest] != ["user", "assistant"]:
        raise DataError(
            "only a single user/assistant exchange can be written as alpaca",
            hint="export as messages or sharegpt",
        )
    out = {"instruction": rest[0]["content"], "input": "", "output": rest[1]["content"]}
    return {**out, "system": system} if system else out


def to_dpo(record: Mapping[str, Any]) -> dict[str, Any]:
    """Export a preference record as {"prompt", "chosen", "rejected"}."""
    if record_kind(record) != "preference":
        raise DataError("only preference records can be exported as dpo")
    return {"prompt": record["prompt"], "chosen": record["chosen"], "rejected": record["rejected"]}


EXPORT_FORMATS: tuple[str, ...] = ("alpaca", "sharegpt", "messages", "dpo")
_EXPORTERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "alpaca": to_alpaca,
    "sharegpt": to_sharegpt,
    "messages": to_messages,
    "dpo": to_dpo,
}


def export_record(record: Mapping[str, Any], fmt: str) -> dict[str, Any]:
    """A normalized record written in one of EXPORT_FORMATS; DataError when it cannot hold it."""
    if fmt not in _EXPORTERS:
        raise DataError(
            f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}"
        )
    return _EXPORTERS[fmt](record)


def convert(record: Mapping[str, Any], source_format: str, target_format: str) -> dict[str, Any]:
    """Convert one raw record between formats (alpaca, sharegpt, messages, dpo), via the normalized form."""
    return export_record(normalize(record, source_format, source="convert"), target_format)
