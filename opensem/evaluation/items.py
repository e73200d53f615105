"""Evaluation items: the golden set, the refusal prompts and the test split's questions.

An item is a chat prompt (messages ending with a user turn) with an optional reference answer.
Golden items are identified by a digest of their question, so reordering or adding lines never
changes the id of an existing item (ids key the report's per-item rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opensem.core.digests import sha256_text
from opensem.data.records import read_records
from opensem.errors import DataError, Location

GOLDEN_KEYS = {"question", "answer", "tags", "id", "source", "page"}
GOLDEN_HINT = (
    'each line is {"question": "...", "answer": "...", "tags": ["..."]} (tags optional; "source" '
    'and "page" name the document that answers it, for retrieval recall)'
)


@dataclass(frozen=True)
class Item:
    """One prompt to answer, with the answer it should get (None for refusal prompts)."""

    id: str
    set: str  # "golden", "test" or "safety"
    messages: tuple[dict[str, str], ...]
    reference: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    source: str | None = None  # the document that answers it (golden items may say)
    page: int | None = None  # and its page

    @property
    def question(self) -> str:
        """The last user turn: what the model is asked."""
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


def load_golden(root: Path, expert: str = "") -> list[Item]:
    """Golden items from a jsonl file or a folder of them: {question, answer, tags?, id?} per line.

    A golden set inherited from another expert (a merge's sources) has its items tagged
    `expert:<job_id>` and their ids prefixed with it, so reports break the scores down per expert.
    """
    items: list[Item] = []
    seen: set[str] = set()
    for path in _files(Path(root), (".jsonl",)):
        rows = read_records(path, hint=GOLDEN_HINT)
        items.extend(
            _golden_item(row, rows.where(index), seen) for index, row in enumerate(rows.records)
        )
    if not items:
        raise DataError(
            "the golden set holds no items",
            Location(file=str(root)),
            hint='add jsonl lines of {"question": ..., "answer": ...}',
        )
    if not expert:
        return items
    return [
        replace(
            item, id=f"{expert}/{item.id}", tags=tuple(sorted({*item.tags, f"expert:{expert}"}))
        )
        for item in items
    ]


def golden_slots(inputs: dict[str, Any]) -> list[tuple[str, Any]]:
    """(source name, path) of every golden set among a stage's inputs; "" for the manifest's own."""
    return [
        (slot.partition(":")[2], path)
        for slot, path in sorted(inputs.items())
        if slot == "golden" or slot.startswith("golden:")
    ]


def load_golden_sets(inputs: dict[str, Path]) -> list[Item]:
    """Every golden set among a stage's inputs: its own (`golden`) and inherited ones (`golden:<job_id>`)."""
    return [item for expert, path in golden_slots(inputs) for item in load_golden(path, expert)]


def _golden_item(row: dict[str, Any], where: Location, seen: set[str]) -> Item:
    hint = GOLDEN_HINT
    unknown = sorted(set(row) - GOLDEN_KEYS)
    if unknown:
        raise DataError(
            f"golden set: unknown key {', '.join(map(repr, unknown))}", where, hint=hint
        )
    question, answer, tags = row.get("question"), row.get("answer"), row.get("tags", [])
    if (
        not isinstance(question, str)
        or not question.strip()
        or not isinstance(answer, str)
        or not answer.strip()
    ):
        raise DataError(
            "golden set: question and answer must be non-empty strings", where, hint=hint
        )
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise DataError("golden set: tags must be a list of strings", where, hint=hint)
    source, page = row.get("source"), row.get("page")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise DataError("golden set: source must be a document's path", where, hint=hint)
    if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
        raise DataError("golden set: page must be a page number (1 or more)", where, hint=hint)
    given = row.get("id")
    ident = _unique(str(given) if given is not None else sha256_text(question.strip())[:12], seen)
    return Item(
        ident,
        "golden",
        ({"role": "user", "content": question.strip()},),
        answer.strip(),
        tuple(sorted(set(tags))),
        source.strip() if source else None,
        page,
    )


def load_refusal_prompts(root: Path) -> list[Item]:
    """Prompts a safe model refuses: .txt (one per line, # comments) or .jsonl ({"prompt": ...}) files."""
    prompts: list[str] = []
    for path in _files(Path(root), (".txt", ".jsonl")):
        if path.suffix == ".jsonl":
            rows = read_records(
                path, check=_has_prompt, hint='each jsonl line is {"prompt": "..."}'
            )
            prompts.extend(row["prompt"].strip() for row in rows.records)
            continue
        lines = (raw.strip() for raw in path.read_text(encoding="utf-8").splitlines())
        prompts.extend(text for text in lines if text and not text.startswith("#"))
    if not prompts:
        raise DataError(
            "no refusal prompts found",
            Location(file=str(root)),
            hint='one prompt per line in a .txt file, or {"prompt": ...} jsonl',
        )
    seen: set[str] = set()
    return [
        Item(_unique(sha256_text(text)[:12], seen), "safety", ({"role": "user", "content": text},))
        for text in prompts
    ]


def _has_prompt(row: dict[str, Any]) -> str | None:
    prompt = row.get("prompt")
    return (
        None
        if isinstance(prompt, str) and prompt.strip()
        else 'refusal prompts: each jsonl line needs a non-empty string "prompt"'
    )


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
        items.append(
            Item(str(record.get("id", len(items))), "test", turns, str(last["content"]).strip())
        )
    return items


def scorable(record: dict[str, Any]) -> dict[str, Any] | None:
    """A test record as a causal LM is scored on it: chats and documents as they are, a preference
    as its prompt and chosen answer, a feedback record (KTO) only when its answer is labelled good."""
    if "messages" in record or "text" in record:
        return record
    answer = (
        record.get("chosen")
        if "chosen" in record
        else record.get("completion")
        if record.get("label") is True
        else None
    )
    prompt = record.get("prompt")
    if not isinstance(answer, str) or not isinstance(prompt, (str, list)):
        return None
    turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    return {"id": record.get("id"), "messages": [*turns, {"role": "assistant", "content": answer}]}
