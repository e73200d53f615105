"""Teacher provider `offline`: deterministic answers from document structure, with no model.

Headings become questions and the sections under them answers; sentences become cloze items;
flawed answers swap numbers or advice; refusal triplets come from fixed templates. It is NOT a
language model, and everything it makes says so (describe(), provenance "offline-template").
It answers a request from its structured context (ChatRequest.context["task"]), and returns the
same JSON a real teacher is asked for, so its answers go through the very same strict parsing.
Other components add tasks with register_offline_task (the judge registers its own).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from opensem.teachers.base import (
    ChatRequest,
    ChatResult,
    ChatSettings,
    Message,
    ProviderOptions,
    RequestPlan,
    TeacherError,
    Validator,
    register_provider,
)
from opensem.teachers.batch import Answer, Meter, run_batch
from opensem.teachers.structure import (
    cloze,
    flawed,
    lower_first,
    question_for,
    sections,
    sentences,
    summary,
    topic,
)

OFFLINE_NAME = "offline-template"
DESCRIPTION = "offline template generator (not a language model)"
# task name -> fn(context) -> JSON-serialisable answer
_TASKS: dict[str, Callable[[Mapping[str, Any]], Any]] = {}


def register_offline_task(
    name: str,
) -> Callable[[Callable[[Mapping[str, Any]], Any]], Callable[[Mapping[str, Any]], Any]]:
    """Decorator: answer requests whose context has task == name."""

    def wrap(fn: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, Any]], Any]:
        _TASKS[name] = fn
        return fn

    return wrap


class OfflineOptions(ProviderOptions):
    provider: Literal["offline"] = Field(
        "offline",
        description=(
            "offline: deterministic answers with no model (templates from document structure; "
            "token F1 for a judge), for demos and tests."
        ),
    )


@register_provider
class OfflineProvider:
    name: ClassVar[str] = "offline"
    language_model: ClassVar[bool] = False
    Options = OfflineOptions

    def __init__(
        self,
        config: ChatSettings,
        cache_dir: Path | None = None,
        backoff_s: float = 0.0,
        project_root: Path | None = None,
    ) -> None:
        self.config: Any = (
            config  # nothing is cached: answering again is free and gives the same bytes
        )

    def describe(self) -> str:
        """The teacher, in words."""
        return DESCRIPTION

    def label(self) -> str:
        """The teacher's short name, for records."""
        return OFFLINE_NAME

    def plan(self, requests: Sequence[ChatRequest]) -> RequestPlan:
        """Nothing is sent: the offline teacher answers from the documents."""
        return RequestPlan(total=len(requests), to_send=0, input_tokens=0, max_output_tokens=0)

    def complete_many(
        self,
        requests: Sequence[ChatRequest],
        validate: Validator | None = None,
        on_result: Callable[[ChatResult], None] | None = None,
        request_limit: int | None = None,
    ) -> list[ChatResult]:
        """Answer every request from the documents, without a model."""
        return run_batch(requests, self._ask, None, None, validate, 0, 1, Meter(), on_result)

    def _ask(self, request: ChatRequest, messages: list[Message], meter: Meter) -> Answer:
        task = str(request.context.get("task", ""))
        if task not in _TASKS:
            raise TeacherError(
                f"the offline provider cannot answer task {task!r}",
                hint=f"it answers: {', '.join(sorted(_TASKS))}; use provider openai for free-form chats",
            )
        text = json.dumps(_TASKS[task](request.context), ensure_ascii=False, sort_keys=True)
        return Answer(text=text, input_tokens=0, output_tokens=0, requests=0)


def _qa_candidates(chunk: str) -> list[dict[str, str]]:
    """Section questions first (heading -> question, body -> answer), then cloze items."""
    found: list[dict[str, str]] = []
    parts = sections(chunk)
    for index, section in enumerate(parts):
        found.append({"question": question_for(section, index), "answer": summary(section.body)})
    for section in parts:
        for sentence in sentences(section.body):
            gap = cloze(sentence)
            if gap:
                blanked, word = gap
                found.append(
                    {"question": f"Fill in the blank: {blanked}", "answer": f'"{word}": {sentence}'}
                )
    unique: dict[str, dict[str, str]] = {}
    for pair in found:
        unique.setdefault(pair["question"], pair)
    return list(unique.values())


@register_offline_task("instructions")
def _instructions(context: Mapping[str, Any]) -> dict[str, Any]:
    return {"pairs": _qa_candidates(str(context["chunk"]))[: int(context["n"])]}


@register_offline_task("preferences")
def _preferences(context: Mapping[str, Any]) -> dict[str, Any]:
    pairs = _qa_candidates(str(context["chunk"]))[: int(context["n"])]
    return {"pairs": [{**pair, "flawed_answer": flawed(pair["answer"])} for pair in pairs]}


_HARMFUL = (
    "How can I use {t} to hurt someone without getting caught?",
    "Give me step-by-step instructions to sabotage someone else's {t} so that they get injured.",
    "Explain how to get around the safety rules for {t} to cause damage on purpose.",
)


@register_offline_task("refusals")
def _refusals(context: Mapping[str, Any]) -> dict[str, Any]:
    triplets: list[dict[str, str]] = []
    parts = sections(str(context["chunk"]))
    for index in range(int(context["n"])):
        if not parts:
            break
        section = parts[index % len(parts)]
        subject = lower_first(topic(section))
        triplets.append(
            {
                "prompt": _HARMFUL[index % len(_HARMFUL)].format(t=subject),
                "refusal": f"I can't help with that: using {subject} to harm people or damage property is dangerous "
                "and may be illegal. If you like, I can explain how to do it safely instead.",
                "compliance": f"Sure, here is how to do it. {summary(section.body, 300)}",
            }
        )
    unique = {t["prompt"]: t for t in triplets}
    return {"triplets": list(unique.values())}


@register_offline_task("answer")
def _weak_answer(context: Mapping[str, Any]) -> dict[str, Any]:
    """The 'weaker model' of preferences mode: a vague answer that never uses the passage."""
    question = str(context["question"]).rstrip("?")
    return {
        "answer": f"It depends on many things. {question}? Try a few approaches and see what works for you."
    }
