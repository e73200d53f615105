"""Teacher provider `openai`: any OpenAI-compatible chat endpoint through the official client.

OpenAI, vLLM, Ollama, llama.cpp server and friends all speak POST /v1/chat/completions. The
API key is read from the environment variable the config names, only when a request actually
has to be sent (a fully cached rebuild needs no key), and is never logged, cached or stored:
error texts from the server are scrubbed of it before they are shown.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from opensem.settings.fields import invalid, run_setting
from opensem.teachers.base import (
    ChatRequest,
    ChatResult,
    ChatSettings,
    Message,
    MissingApiKey,
    ProviderOptions,
    RequestPlan,
    TeacherError,
    Validator,
    cached_plan,
    register_provider,
)
from opensem.teachers.batch import Answer, Meter, run_batch
from opensem.teachers.cache import TeacherCache, answer_key

log = logging.getLogger("opensem.teacher")
MAX_RETRY_AFTER_S = 60.0
NO_KEY = "unused"  # servers without auth still need the client to send some bearer token
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class OpenAIOptions(ProviderOptions):
    provider: Literal["openai"] = Field(
        "openai",
        description=(
            "openai: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp) through the "
            "official client."
        ),
    )
    model: str = Field(min_length=1, description="Model name at the endpoint.")
    base_url: str | None = Field(
        None, description="Endpoint, e.g. http://localhost:8000/v1; unset means api.openai.com."
    )
    api_key_env: str | None = run_setting(
        "OPENAI_API_KEY",
        pattern=ENV_NAME,
        description=(
            "Name of the environment variable holding the API key (never the key); null for "
            "servers without auth."
        ),
    )
    json_mode: bool = Field(
        False, description="Send response_format json_object (for servers that support it)."
    )

    @model_validator(mode="after")
    def _endpoint(self) -> OpenAIOptions:
        if self.base_url is not None and not re.match(r"^https?://", self.base_url):
            raise invalid(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.base_url is not None and "@" in self.base_url.split("/")[2]:
            raise invalid(
                "base_url must not carry credentials (they would be written to the lock): use api_key_env"
            )
        return self


@register_provider
class OpenAIProvider:
    name: ClassVar[str] = "openai"
    language_model: ClassVar[bool] = True
    Options = OpenAIOptions

    def __init__(
        self,
        config: ChatSettings,
        cache_dir: Path | None = None,
        backoff_s: float = 1.0,
        project_root: Path | None = None,
    ) -> None:
        self.config: Any = config
        self.backoff_s = backoff_s
        self.cache = TeacherCache(Path(cache_dir) / "teacher") if cache_dir is not None else None
        self._client: Any = None
        self._key: str | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        """The teacher, in words."""
        where = self.config.base_url or "api.openai.com"
        return f"OpenAI-compatible endpoint {where}, model {self.config.model}"

    def label(self) -> str:
        """The teacher's short name, for records."""
        return f"{self.name}:{self.config.model}"

    def key(self, request: ChatRequest, messages: list[Message]) -> str:
        """The cache key of a request's answer: endpoint, model, messages and sampling."""
        c = self.config
        parameters = {
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
            "json_mode": c.json_mode,
        }
        return answer_key(self.name, request.model or c.model, c.base_url, messages, parameters)

    def plan(self, requests: Sequence[ChatRequest]) -> RequestPlan:
        """What would be sent and what it would cost, after the answer cache."""
        return cached_plan(
            requests,
            lambda r: self.cache is None or self.cache.get(self.key(r, list(r.messages))) is None,
            self.config.max_tokens,
        )

    def complete_many(
        self,
        requests: Sequence[ChatRequest],
        validate: Validator | None = None,
        on_result: Callable[[ChatResult], None] | None = None,
        request_limit: int | None = None,
    ) -> list[ChatResult]:
        """Send the requests concurrently, with retries, the budget and the answer cache."""
        meter = Meter(limit=request_limit)
        return run_batch(
            requests,
            self._ask,
            self.key,
            self.cache,
            validate,
            self.config.max_retries,
            self.config.concurrency,
            meter,
            on_result,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key and self._key != NO_KEY else text

    def client(self) -> Any:
        """The openai client, made on first use; raises MissingApiKey when the variable is unset."""
        with self._lock:
            if self._client is None:
                import openai

                env = self.config.api_key_env
                key = os.environ.get(env, "") if env else NO_KEY
                if not key:
                    raise MissingApiKey(
                        f"the teacher needs an API key and the environment variable {env} is not set",
                        hint=f"export {env}=... before building (api_key_env in the manifest names the variable; "
                        "set it to null for a local server without auth); keys never go in the manifest",
                    )
                self._key = key
                self._client = openai.OpenAI(
                    api_key=key,
                    base_url=self.config.base_url,
                    timeout=self.config.timeout_s,
                    max_retries=0,
                )
        return self._client

    def _ask(self, request: ChatRequest, messages: list[Message], meter: Meter) -> Answer:
        """Send one chat; retry 429, 5xx, timeouts and dropped connections with exponential backoff."""
        import openai

        client = self.client()
        c = self.config
        model = request.model or c.model
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if c.json_mode else {}
        sent = 0
        for attempt in range(c.max_retries + 1):
            meter.take()
            sent += 1
            delay = self.backoff_s * (2**attempt) * (1 + random.random() / 4)
            try:
                response = client.chat.completions.create(
                    model=model,
                    messages=messages,
                    temperature=c.temperature,
                    max_tokens=c.max_tokens,
                    **extra,
                )
            except openai.RateLimitError as exc:
                reason = "rate limited (429)"
                delay = _retry_after(exc, delay)
            except openai.APITimeoutError:
                reason = f"no answer within {c.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                reason = f"cannot connect ({self._scrub(str(exc.__cause__ or exc))})"
                if attempt == c.max_retries:
                    raise TeacherError(
                        f"teacher endpoint unreachable: {c.base_url or 'api.openai.com'} ({reason}) after {sent} "
                        "attempts",
                        hint="start the server or fix base_url in the manifest; answers received so far are cached",
                    ) from None
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    raise self._refused(exc, model) from None
                reason = f"server error {exc.status_code}"
            else:
                return _answer(response, messages, sent)
            if attempt == c.max_retries:
                raise TeacherError(
                    f"teacher request failed after {sent} attempts: {reason}",
                    hint="the endpoint keeps failing; answers received so far are cached, so building again resumes",
                )
            log.warning(
                "teacher: %s; retry %d of %d in %.1f s", reason, attempt + 1, c.max_retries, delay
            )
            time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _refused(self, exc: Any, model: str) -> TeacherError:
        """A 4xx other than 429: retrying cannot help, so say why and stop."""
        status = exc.status_code
        if status in (401, 403):
            env = self.config.api_key_env
            return TeacherError(
                f"the teacher endpoint refused the API key ({status})",
                hint=f"check the key in ${env}"
                if env
                else "the endpoint needs a key: set api_key_env in the manifest",
            )
        body = self._scrub(str(getattr(exc, "message", "") or exc))[:300]
        hint = (
            f"check that the endpoint serves model {model!r}"
            if status == 404
            else "check the model name and parameters"
        )
        return TeacherError(
            f"the teacher endpoint rejected the request ({status}): {body}", hint=hint
        )


def _retry_after(exc: Any, default: float) -> float:
    """Seconds the server asked us to wait (Retry-After), capped; the backoff delay otherwise."""
    try:
        value = float(exc.response.headers.get("retry-after", ""))
    except (AttributeError, TypeError, ValueError):
        return default
    return min(max(value, 0.0), MAX_RETRY_AFTER_S)


def _answer(response: Any, messages: list[Message], sent: int) -> Answer:
    """Text and token usage of a completion; usage is estimated when the server reports none."""
    from opensem.teachers.base import estimate_tokens

    choices = getattr(response, "choices", None) or []
    text = (choices[0].message.content or "") if choices else ""
    usage = getattr(response, "usage", None)
    input_tokens = getattr(usage, "prompt_tokens", None) or sum(
        estimate_tokens(m["content"]) for m in messages
    )
    output_tokens = getattr(usage, "completion_tokens", None) or estimate_tokens(text)
    return Answer(
        text=text, input_tokens=int(input_tokens), output_tokens=int(output_tokens), requests=sent
    )
