"""Strict parsing of teacher answers: the JSON shape each mode asks for, or InvalidAnswer.

An answer is accepted only when it is one JSON object with the list the prompt asked for, and
every item has every field as a non-empty string. More items than asked are cut to the number
asked; an answer with none is invalid. Invalid answers are re-asked, then skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opensem.teachers.base import InvalidAnswer, validate_json_object

# mode -> (list key, item fields)
SHAPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "instructions": ("pairs", ("question", "answer")),
    "preferences": ("pairs", ("question", "answer", "flawed_answer")),
    "refusals": ("triplets", ("prompt", "refusal", "compliance")),
}


def items_validator(mode: str, limit: int) -> Callable[[str], list[dict[str, str]]]:
    """A validator for a mode's answers, returning at most limit items."""
    key, fields = SHAPES[mode]
    example = "{" + f'"{key}": [{{' + ", ".join(f'"{f}": "..."' for f in fields) + "}]}"

    def validate(text: str) -> list[dict[str, str]]:
        data = validate_json_object(text)
        items = data.get(key)
        if not isinstance(items, list) or not items:
            raise InvalidAnswer(
                f"expected {example} with at least one item; got keys {sorted(data)}"
            )
        parsed: list[dict[str, str]] = []
        for index, item in enumerate(items[:limit]):
            if not isinstance(item, dict):
                raise InvalidAnswer(f"{key}[{index}] must be an object, got {type(item).__name__}")
            for name in fields:
                value = item.get(name)
                if not isinstance(value, str) or not value.strip():
                    raise InvalidAnswer(f"{key}[{index}].{name} must be a non-empty string")
            parsed.append({name: item[name].strip() for name in fields})
        return parsed

    return validate


def answer_validator(text: str) -> str:
    """The rejected model's answer: {"answer": "..."}."""
    data: dict[str, Any] = validate_json_object(text)
    value = data.get("answer")
    if not isinstance(value, str) or not value.strip():
        raise InvalidAnswer('expected {"answer": "..."} with a non-empty string')
    return value.strip()
