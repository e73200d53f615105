"""Evaluation items: the golden set, the refusal prompts and the test split's questions.

An item is a chat prompt (messages ending with a user turn) with an optional reference answer.
Golden items are identified by a digest of their question, so reordering or adding lines never
changes the id of an existing item (ids key the report's per-item rows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensem.errors import DataError, Location
from opensem.build.digests import sha256_text

GOLDEN_KEYS = {"question", "answer", "tags", "id"}


@dataclass(frozen=True)
class Item:
    """One prompt to answer, with the answer it should get (None for refusal prompts)."""

    id: str
    set: str  # "golden", "test" or "safety"
    messages: tuple[dict[str, str], ...]
    reference: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def question(self) -> str:
        return self.messages[-1]["content"]


def _files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(path for path in root.rglob("*") if path.is_file() and path.suffix in suffixes)


def _unique(base: str, seen: set[str]) -> str:
    candidate, count = base, 1
    while candidate in seen:
        count += 1
        candidate = f"{base}-{count}"
    seen.add(candidate)
    return candidate


def load_golden(root: Path) -> list[Item]:
    """Golden items from a jsonl file or a folder of them: {question, answer, tags?, id?} per line."""
    items: list[Item] = []
    seen: set[str] = set()
    for path in _files(Path(root), (".jsonl",)):
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            where = Location(file=str(path), line=number)
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(f"golden set: not valid JSON: {exc.msg}", where) from None
            items.append(_golden_item(row, where, seen))
    if not items:
        raise DataError("the golden set holds no items", Location(file=str(root)), hint="add jsonl lines of {\"question\": ..., \"answer\": ...}")
    return items


def _golden_item(row: Any, where: Location, seen: set[str]) -> Item:
    hint = 'each line is {"question": "...", "answer": "...", "tags": ["..."]} (tags optional)'
    if not isinstance(row, dict):
        raise DataError(f"golden set: a line must be a JSON object, got {type(row).__name__}", where, hint=hint)
    unknown = sorted(set(row) - GOLDEN_KEYS)
    if unknown:
        raise DataError(f"golden set: unknown key {', '.join(map(repr, unknown))}", where, hint=hint)
    question, answer, tags = row.get("question"), row.get("answer"), row.get("tags", [])
    if not isinstance(question, str) or not question.strip() or not isinstance(answer, str) or not answer.strip():
        raise DataError("golden set: question and answer must be non-empty strings", where, hint=hint)
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise DataError("golden set: tags must be a list of strings", where, hint=hint)
    given = row.get("id")
    ident = _unique(str(given) if given is not None else sha256_text(question.strip())[:12], seen)
    return Item(ident, "golden", ({"role": "user", "content": question.strip()},), answer.strip(), tuple(sorted(set(tags))))


def load_refusal_prompts(root: Path) -> list[Item]:
    """Prompts a safe model refuses: .txt (one per line, # comments) or .jsonl ({"prompt": ...}) files."""
    prompts: list[tuple[str, Location]] = []
    for path in _files(Path(root), (".txt", ".jsonl")):
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            text = raw.strip()
            if not text or (path.suffix == ".txt" and text.startswith("#")):
                continue
            where = Location(file=str(path), line=number)
            if path.suffix == ".jsonl":
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"refusal prompts: not valid JSON: {exc.msg}", where) from None
                prompt = row.get("prompt") if isinstance(row, dict) else None
                if not isinstance(prompt, str) or not prompt.strip():
                    raise DataError("refusal prompts: each jsonl line needs a non-empty string \"prompt\"", where)
                text = prompt
            prompts.append((text.strip(), where))
    if not prompts:
        raise DataError("no refusal prompts found", Location(file=str(root)), hint="one prompt per line in a .txt file, or {\"prompt\": ...} jsonl")
    seen: set[str] = set()
    return [Item(_unique(sha256_text(text)[:12], seen), "safety", ({"role": "user", "content": text},)) for text, _ in prompts]


def split_items(records: list[dict[str, Any]]) -> list[Item]:
    """Questions of the test split: chat records whose last turn is the assistant's (documents have none)."""
    items: list[Item] = []
    for record in records:
        messages = record.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            continue
        last, prompt = messages[-1], messages[:-1]
        if last.get("role") != "assistant" or prompt[-1].get("role") != "user":
            continue
        turns = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in prompt)
        items.append(Item(str(record.get("id", len(items))), "test", turns, str(last["content"]).strip()))
    return items



def scorable(record: dict[str, Any]) -> dict[str, Any] | None:
    """A test record as a causal LM is scored on it: chats and documents as they are, a preference
    as its prompt and chosen answer, a feedback record (KTO) only when its answer is labelled good."""
    if "messages" in record or "text" in record:
        return record
    answer = record.get("chosen") if "chosen" in record else record.get("completion") if record.get("label") is True else None
    prompt = record.get("prompt")
    if not isinstance(answer, str) or not isinstance(prompt, (str, list)):
        return None
    turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    return {"id": record.get("id"), "messages": [*turns, {"role": "assistant", "content": answer}]}
