"""The provider contract shared by the Data Forge (synthesize) and the Judge, and its registry.

A provider answers chat requests. Callers hand it a batch and get one result per request, in
order; retries, backoff, concurrency, the response cache and the request budget live behind
this interface, so a caller only decides what to ask and how to check an answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import create_model, model_validator

from opensem.errors import StageError
from opensem.plugins import Registry
from opensem.settings.fields import Section, invalid, tagged_union

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


class ProviderOptions(Section):
    """Base of every provider's own manifest options; each provider narrows `provider` to its name."""

    provider: str

    @model_validator(mode="before")
    @classmethod
    def _no_keys_in_manifests(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in data for k in ("api_key", "key", "token")):
            raise invalid(
                "an API key never goes in the manifest: put it in an environment variable and name that variable in "
                "api_key_env"
            )
        return data


class ChatSettings(Protocol):
    """What a provider reads of the manifest section it serves (synthesis, evaluation.judge): the
    provider's own options plus these. Each section defines these fields with its own defaults."""

    provider: str
    temperature: float
    max_tokens: int
    concurrency: int
    timeout_s: float
    max_retries: int  # per request on 429/5xx/timeouts, and per invalid answer


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
        """Whether an answer was accepted."""
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
    Options: ClassVar[
        type[ProviderOptions]
    ]  # its manifest options, merged into each section it serves
    config: Any  # the section it serves (ChatSettings plus its Options)

    def describe(self) -> str:
        """One line for logs and reports: what answers, honestly."""
        ...

    def label(self) -> str:
        """Short provenance label for records it wrote: "offline-template", "openai:gpt-4o-mini"."""
        ...

    def plan(self, requests: Sequence[ChatRequest]) -> RequestPlan:
        """What completing requests would send and cost, before sending anything."""

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


def cached_plan(
    requests: Sequence[ChatRequest], missing: Callable[[ChatRequest], bool], max_tokens: int
) -> RequestPlan:
    """What a batch costs when only the requests the cache misses are sent (missing(request) says which)."""
    misses = [r for r in requests if missing(r)]
    return RequestPlan(
        total=len(requests),
        to_send=len(misses),
        input_tokens=sum(request_tokens(r) for r in misses),
        max_output_tokens=len(misses) * max_tokens,
    )


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters per token): enough for a budget, never billed on."""
    return math.ceil(len(text) / 4)


def request_tokens(request: ChatRequest) -> int:
    """An estimate of a request's input tokens."""
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


PROVIDERS: Registry[type] = Registry(
    "teacher provider", "opensem.teachers", ("openai", "offline", "local"), instantiate=False
)
register_provider = PROVIDERS.register


def provider_names() -> list[str]:
    """Names of the registered teacher providers."""
    return sorted(PROVIDERS.names())


def provider_union(settings: type[Section], default: str) -> Any:
    """A manifest section served by a provider: settings merged with each provider's own options,
    as a union tagged by `provider` (default when left out). A new provider adds its options here."""
    members = []
    for provider in PROVIDERS.all():
        options: type[ProviderOptions] = provider.Options  # type: ignore[attr-defined]
        name = f"{settings.__name__.removesuffix('Settings')}{options.__name__.removesuffix('Options')}"
        members.append(
            create_model(name, __base__=(options, settings), __module__=settings.__module__)
        )
    return tagged_union(members, "provider", default)


def provider_from_config(
    config: ChatSettings,
    cache_dir: Path | None = None,
    backoff_s: float = 1.0,
    project_root: Path | None = None,
) -> TeacherProvider:
    """The provider a section names. cache_dir is the shared cache root (ctx.cache_dir): answers
    go under cache_dir/teacher/; None disables the cache. backoff_s is the first retry's delay;
    project_root is where a provider finds a model folder the manifest names."""
    return PROVIDERS.get(config.provider)(config, cache_dir, backoff_s, project_root)
