"""Which text of a record is compared, and how it is normalized.

Records come in three kinds (opensem.data.formats): instructions (messages), documents (text) and
preferences (prompt, chosen, rejected). The instruction of a chat is its user turns (a system
prompt shared by many records would make them all look alike); its answer is the assistant turns.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal

from opensem.core.digests import sha256_text
from opensem.data.formats import record_kind

Field = Literal["instruction", "instruction_and_answer"]
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


def instruction_of(record: Mapping[str, Any]) -> str:
    """The question side: user turns of a chat, a document's text, a preference's or feedback's prompt."""
    kind = record_kind(record)
    if kind == "document":
        return str(record["text"])
    if kind in ("preference", "feedback"):
        return str(record["prompt"])
    messages = record["messages"]
    users = [m["content"] for m in messages if m["role"] == "user"]
    if not users:  # a chat of system and assistant turns only: its prompt is the system turn
        users = [m["content"] for m in messages if m["role"] != "assistant"]
    return "\n".join(users)


def answer_of(record: Mapping[str, Any]) -> str:
    """The answer side: assistant turns of a chat, a preference's chosen answer; empty for documents."""
    kind = record_kind(record)
    if kind == "document":
        return ""
    if kind == "preference":
        return str(record["chosen"])
    if kind == "feedback":
        return str(record["completion"])
    return "\n".join(m["content"] for m in record["messages"] if m["role"] == "assistant")


def field_text(record: Mapping[str, Any], field: str) -> str:
    """The text dedup compares for a record: its instruction, or instruction and answer."""
    instruction = instruction_of(record)
    if field == "instruction":
        return instruction
    answer = answer_of(record)
    return f"{instruction}\n{answer}" if answer else instruction


def full_text(record: Mapping[str, Any]) -> str:
    """Everything a model trains on in this record: every turn, or all three preference fields."""
    kind = record_kind(record)
    if kind == "document":
        return str(record["text"])
    if kind == "preference":
        return "\n".join(str(record[k]) for k in ("prompt", "chosen", "rejected"))
    if kind == "feedback":
        return f"{record['prompt']}\n{record['completion']}"
    return "\n".join(m["content"] for m in record["messages"])


def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace runs collapsed to one space: equal after this means an exact duplicate."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def normalized_digest(text: str) -> str:
    """Digest of the text with whitespace and case normalized: the exact-duplicate key."""
    return sha256_text(normalize(text))


def words(text: str) -> list[str]:
    """Word tokens for n-grams: NFKC, case-folded runs of letters and digits (punctuation ignored)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def snippet(text: str, limit: int = 160) -> str:
    """One line of at most limit characters, for reports."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
