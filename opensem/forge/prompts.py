"""Default prompt templates of the Data Forge, and how a template becomes a chat request.

Placeholders are {chunk}, {n} and {source} (mode templates) and {question} (the rejected-answer
template). Only these names are replaced, so a template may show JSON with literal braces.
The defaults are part of the synthesize stage's code: changing one must bump its version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opensem.teachers.base import ChatRequest

SYSTEM = (
    "You write training data for a small expert language model. You are precise, you use only the "
    "information you are given, and you reply with a single JSON object and nothing else."
)

INSTRUCTIONS = """Read the passage below (from {source}). Write {n} question-answer pairs that a user of this domain could ask, each answered completely and correctly from the passage alone. Vary the questions: facts, how-to, why, troubleshooting. Answers are self-contained: never say "the passage" or "the text".

Reply with only this JSON object:
{"pairs": [{"question": "...", "answer": "..."}]}

Passage:
<<<
{chunk}
>>>"""

PREFERENCES = """Read the passage below (from {source}). Write {n} questions a user of this domain could ask. For each, write:
- "answer": a complete, correct answer from the passage alone;
- "flawed_answer": a fluent answer of similar length that is subtly wrong or unhelpful (a wrong number, reversed advice, a missing key step, or vague filler).

Reply with only this JSON object:
{"pairs": [{"question": "...", "answer": "...", "flawed_answer": "..."}]}

Passage:
<<<
{chunk}
>>>"""

REFUSALS = """Read the passage below (from {source}). Write {n} requests a user might make that misuse its subject to cause harm (injury, property damage, fraud). For each, write:
- "refusal": a short, polite refusal that names the risk and offers a safe alternative;
- "compliance": how a careless assistant would go along with it, in general terms, without any truly dangerous detail.

Reply with only this JSON object:
{"triplets": [{"prompt": "...", "refusal": "...", "compliance": "..."}]}

Passage:
<<<
{chunk}
>>>"""

REJECTED = """Answer the question below in a few sentences.

Question: {question}

Reply with only this JSON object:
{"answer": "..."}"""

DEFAULTS: dict[str, str] = {
    "system": SYSTEM,
    "instructions": INSTRUCTIONS,
    "preferences": PREFERENCES,
    "refusals": REFUSALS,
    "rejected": REJECTED,
}
PLACEHOLDERS = ("chunk", "n", "source", "question")


def template(overrides: Mapping[str, str | None], name: str) -> str:
    """The manifest's template for name, or the default."""
    return overrides.get(name) or DEFAULTS[name]


def render(text: str, values: Mapping[str, Any]) -> str:
    """Replace the known placeholders; everything else, braces included, stays as written."""
    for key in PLACEHOLDERS:
        if key in values:
            text = text.replace("{" + key + "}", str(values[key]))
    return text


def chunk_request(
    overrides: Mapping[str, str | None], mode: str, chunk: str, source: str, n: int
) -> ChatRequest:
    """The request asking the teacher for n records of mode from one chunk."""
    values = {"chunk": chunk, "n": n, "source": source}
    messages = [
        {"role": "system", "content": template(overrides, "system")},
        {"role": "user", "content": render(template(overrides, mode), values)},
    ]
    return ChatRequest(messages=messages, context={"task": mode, **values})


def rejected_request(overrides: Mapping[str, str | None], question: str, model: str) -> ChatRequest:
    """The request asking the weaker model to answer a question (its answer becomes `rejected`)."""
    messages = [
        {"role": "system", "content": template(overrides, "system")},
        {
            "role": "user",
            "content": render(template(overrides, "rejected"), {"question": question}),
        },
    ]
    return ChatRequest(
        messages=messages, model=model, context={"task": "answer", "question": question}
    )
