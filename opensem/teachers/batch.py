"""Running a batch of chat requests: concurrency, the cache, invalid-answer retries, the budget.

Shared by every provider, so the cache and retry rules are the same whoever answers. An invalid
answer is re-asked with the answer and what was wrong with it appended (a plain repeat would get
the same answer from a deterministic server); each of those turns is cached like any other, so a
resumed build replays the whole exchange without paying for any of it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from opensem.teachers.base import (
    BudgetExceeded,
    ChatRequest,
    ChatResult,
    InvalidAnswer,
    Message,
    Validator,
)
from opensem.teachers.cache import TeacherCache

CORRECTION = (
    "Your previous answer could not be used: {error}. Reply again with only the JSON object in the "
    "requested shape, with no other text."
)


@dataclass(frozen=True)
class Answer:
    """One fresh answer from the endpoint, with the HTTP requests it took (retries included)."""

    text: str
    input_tokens: int
    output_tokens: int
    requests: int


@dataclass
class Meter:
    """Counts HTTP requests across threads and refuses the one past the limit."""

    limit: int | None = None
    sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self) -> None:
        """Count a request; BudgetExceeded past the limit."""
        with self._lock:
            if self.limit is not None and self.sent >= self.limit:
                raise BudgetExceeded(
                    f"request budget reached: {self.sent} requests sent, budget.max_requests is {self.limit}",
                    hint="answers already received are cached and will not be paid again; raise "
                    "synthesis.budget.max_requests (retries of failed or invalid answers count too) and build again",
                )
            self.sent += 1


# ask(request, messages, meter) sends one chat and returns its answer (transport retries inside).
Ask = Callable[[ChatRequest, list[Message], Meter], Answer]
# key(request, messages) names a cached answer; None disables the cache.
KeyOf = Callable[[ChatRequest, list[Message]], str]


class _Stopped(Exception):
    """Another request failed for good; this one was not started."""


def run_batch(
    requests: Sequence[ChatRequest],
    ask: Ask,
    key_of: KeyOf | None,
    cache: TeacherCache | None,
    validate: Validator | None,
    max_retries: int,
    concurrency: int,
    meter: Meter,
    on_result: Callable[[ChatResult], None] | None = None,
) -> list[ChatResult]:
    """One result per request, in order; the first fatal error stops new requests and is raised
    once the requests in flight have finished (their answers are cached)."""
    stop = threading.Event()

    def one(request: ChatRequest) -> ChatResult:
        messages = list(request.messages)
        totals: dict[str, Any] = {
            "answers": 0,
            "invalid": 0,
            "requests": 0,
            "cache_hits": 0,
            "input_tokens": 0,
            "output_tokens": 0,
        }
        error = ""
        for _ in range(max_retries + 1):
            if stop.is_set():
                raise _Stopped()
            key = key_of(request, messages) if key_of is not None and cache is not None else None
            entry = cache.get(key) if cache is not None and key is not None else None
            if entry is not None:
                text = entry["text"]
                totals["cache_hits"] += 1
            else:
                answer = ask(request, messages, meter)
                text = answer.text
                if cache is not None and key is not None:
                    cache.put(key, text, answer.input_tokens, answer.output_tokens)
                totals["requests"] += answer.requests
                totals["input_tokens"] += answer.input_tokens
                totals["output_tokens"] += answer.output_tokens
            totals["answers"] += 1
            try:
                value: Any = validate(text) if validate is not None else text
            except InvalidAnswer as exc:
                totals["invalid"] += 1
                error = str(exc)
                messages = [
                    *request.messages,
                    {"role": "assistant", "content": text},
                    {"role": "user", "content": CORRECTION.format(error=error)},
                ]
                continue
            return ChatResult(text=text, value=value, **totals)
        return ChatResult(text=None, error=error, **totals)

    # Identical requests in one batch are asked once: the second would pay for the same answer.
    keys = [
        key_of(r, list(r.messages)) if key_of is not None else str(i)
        for i, r in enumerate(requests)
    ]
    unique: dict[str, int] = {}
    copies: dict[str, int] = {}
    for index, key in enumerate(keys):
        unique.setdefault(key, index)
        copies[key] = copies.get(key, 0) + 1
    answered: dict[int, ChatResult] = {}
    failure: BaseException | None = None
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(unique) or 1)), thread_name_prefix="teacher"
    )
    pending: dict[Future[ChatResult], int] = {
        pool.submit(one, requests[index]): index for index in unique.values()
    }
    try:
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                try:
                    answered[index] = future.result()
                except _Stopped:
                    continue
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after in-flight requests end
                    if failure is None:
                        failure = exc
                        stop.set()
                    continue
                if on_result is not None:
                    for _ in range(copies[keys[index]]):
                        on_result(answered[index])
    except BaseException:
        stop.set()  # Ctrl-C: start nothing new; answers in flight are still cached when they arrive
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        raise failure
    return [answered[unique[key]] for key in keys]
