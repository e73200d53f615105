"""The provider contract shared by the Data Forge (synthesize) and the Judge, and its registry.

A provider answers chat requests. Callers hand it a batch and get one result per request, in
order; retries, backoff, concurrency, the response cache and the request budget live behind
this interface, so a caller only decides what to ask and how to check an answer.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Mapping, Protocol, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from opensem.errors import StageError

Message = dict[str, str]
# A validator turns an answer's text into a value, or raises InvalidAnswer saying what is wrong.
Validator = Callable[[str], Any]


class TeacherError(StageError):
    """The teacher could not be asked: unreachable endpoint, refused request, server failing."""


class MissingApiKey(TeacherError):
    """The environment variable that should hold the API key is not set."""


class BudgetExceeded(StageError):
    """The requests a build needs would exceed the manifest's budget; nothing more is spent."""


class InvalidAnswer(ValueError):
    """An answer that does not parse as the JSON the caller asked for (retried, then skipped)."""


class TeacherConfig(BaseModel):
    """Which teacher to ask and how. Holds the *name* of the key's variable, never the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["offline", "openai"] = "offline"
    model: str = "offline-template"
    base_url: str | None = None  # None: the client's default (api.openai.com)
    api_key_env: str | None = "OPENAI_API_KEY"  # None: a local server that needs no key
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(1024, gt=0)
    concurrency: int = Field(8, gt=0, le=256)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)  # per request on 429/5xx/timeouts, and per invalid answer
    backoff_s: float = Field(1.0, ge=0)  # first retry delay; doubles each time
    json_mode: bool = False  # ask for response_format json_object (not every server supports it)


@dataclass(frozen=True)
class ChatRequest:
    """One chat to send. context describes the task in structured form for providers that are
    not language models (offline); it is never sent and never part of the cache key."""

    messages: list[Message]
    model: str | None = None  # None: the provider's configured model
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatResult:
    """What came back for one request, after retries."""

    text: str | None  # the accepted answer (None when every answer was invalid)
    value: Any = None  # what the validator returned for text
    error: str | None = None  # why no answer was accepted
    answers: int = 0  # answers received, cached or fresh (more than 1 after invalid ones)
    invalid: int = 0  # answers the validator rejected
    requests: int = 0  # HTTP requests sent for it (retries included; 0 when all were cached)
    cache_hits: int = 0
    input_tokens: int = 0  # usage reported for the fresh requests
    output_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.text is not None


@dataclass(frozen=True)
class RequestPlan:
    """What a batch would cost before anything is sent: first attempts that miss the cache."""

    total: int
    to_send: int
    input_tokens: int  # estimated for the requests to send
    max_output_tokens: int  # upper bound: max_tokens per request to send


class TeacherProvider(Protocol):
    name: ClassVar[str]
    language_model: ClassVar[bool]  # False for the offline template generator
    config: TeacherConfig

    def describe(self) -> str:
        """One line for logs and reports: what answers, honestly."""
        ...

    def plan(self, requests: Sequence[ChatRequest]) -> RequestPlan: ...

    def complete_many(
        self,
        requests: Sequence[ChatRequest],
        validate: Validator | None = None,
        on_result: Callable[[ChatResult], None] | None = None,
        request_limit: int | None = None,
    ) -> list[ChatResult]:
        """One result per request, in order. Invalid answers are re-asked up to max_retries;
        transport failures that outlast the retries raise TeacherError; sending more than
        request_limit HTTP requests raises BudgetExceeded (answers already paid stay cached)."""
        ...


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters per token): enough for a budget, never billed on."""
    return math.ceil(len(text) / 4)


def request_tokens(request: ChatRequest) -> int:
    return sum(estimate_tokens(m["content"]) + 4 for m in request.messages)


def validate_json_object(text: str) -> dict[str, Any]:
    """Strict JSON: the whole answer (a ```json fence aside) must be one JSON object."""
    import json

    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0] if body.rstrip().endswith("```") else body
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise InvalidAnswer(f"expected a JSON object, got {type(value).__name__}")
    return value


_PROVIDERS: dict[str, type] = {}
_MODULES = ("openai", "offline")
P = TypeVar("P", bound=type)


def register_provider(cls: P) -> P:
    """Class decorator: add a provider class to the registry under its unique name."""
    name = getattr(cls, "name")
    if name in _PROVIDERS and _PROVIDERS[name] is not cls:
        raise ValueError(f"teacher provider {name!r} is registered twice")
    _PROVIDERS[name] = cls
    return cls


def provider_names() -> list[str]:
    for module in _MODULES:
        importlib.import_module(f"opensem.teachers.{module}")
    return sorted(_PROVIDERS)


def provider_from_config(config: TeacherConfig, cache_dir: Path | None = None) -> TeacherProvider:
    """The provider a config names. cache_dir is the shared cache root (ctx.cache_dir): answers
    go under cache_dir/teacher/; None disables the cache (nothing is remembered)."""
    if config.provider not in provider_names():
        raise TeacherError(f"unknown teacher provider {config.provider!r}", hint=f"use one of: {', '.join(provider_names())}")
    return _PROVIDERS[config.provider](config, cache_dir)  # type: ignore[no-any-return]
