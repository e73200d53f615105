"""One generation request as both engines (transformers, vLLM) take it, and what came of it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


class Overloaded(Exception):
    """The queue is full, or the device ran out of memory for this batch."""


@dataclass
class Generation:
    """One request to generate for, and (once done) what came of it."""

    prompt_ids: list[int]
    adapter: str | None  # an adapter id of this engine, or None for the model itself
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    on_delta: Callable[[str], object] | None = None  # streamed text, called on the worker thread
    on_done: Callable[[], object] | None = None  # called on the worker thread when finished
    cancelled: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    finish_reason: str = ""
    completion_tokens: int = 0
    first_token_at: float | None = None
    error: Exception | None = None
