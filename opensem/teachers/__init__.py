"""Teacher and judge providers: one small interface, one file per provider.

Usage (the Data Forge's synthesize stage and the Judge both work this way)::

    from opensem.teachers import ChatRequest, provider_from_config, validate_json_object

    config = params.synthesis                                  # a manifest section a provider serves
    provider = provider_from_config(config, ctx.cache_dir)     # answers cached under cache_dir/teacher/
    requests = [ChatRequest(messages=[{"role": "user", "content": prompt}], context={"task": "judge", ...})]
    plan = provider.plan(requests)                             # to_send (cache misses), estimated tokens
    results = provider.complete_many(requests, validate=my_parser, on_result=bar_advance, request_limit=100)
    for result in results:                                     # same order as requests
        if result.ok: use(result.value)                        # what my_parser returned
        else: skipped += 1                                     # result.error says why (invalid after retries)

The contract:

- A provider serves a manifest section (`synthesis`, `evaluation.judge`): the section's shared
  settings (ChatSettings: temperature, max_tokens, concurrency, timeout_s, max_retries) merged with
  the provider's own `Options` (openai: model, base_url, api_key_env, json_mode; offline: none), as
  a union tagged by `provider` (`provider_union`). api_key_env is the *name* of the variable holding
  the key; the key itself is never in a manifest, a lot, a log or the cache.
- `ChatRequest(messages, model=None, context={})`: model overrides the configured one (a weaker
  model for rejected answers); context describes the task for the offline provider and is
  neither sent nor part of the cache key.
- `complete_many(requests, validate, on_result, request_limit) -> list[ChatResult]`: runs
  `concurrency` requests at once; retries 429 (honouring Retry-After), 5xx, timeouts and dropped
  connections with exponential backoff (max_retries); other 4xx, a missing key (MissingApiKey)
  and an unreachable endpoint raise TeacherError (a StageError: exit 1). `validate(text)` parses
  an answer or raises InvalidAnswer; an invalid answer is re-asked with the error appended, up to
  max_retries, then reported as `ChatResult(ok=False, error=...)`. Passing request_limit makes the
  request past it raise BudgetExceeded. ChatResult carries requests sent, cache hits and token usage.
- The cache (`cache.py`) files each answer atomically the moment it arrives, keyed by the digest of
  (provider, model, base_url, messages, parameters): shared across lots and manifests, so a killed
  build resumes without paying twice and an edited document only pays for its changed chunks.
- `offline` is a deterministic template generator, not a language model (`language_model` is False,
  `describe()` says so). It answers from `ChatRequest.context["task"]`; add a task with
  `opensem.teachers.offline.register_offline_task(name)`.
"""

from opensem.teachers.base import (
    BudgetExceeded,
    ChatRequest,
    ChatResult,
    ChatSettings,
    InvalidAnswer,
    MissingApiKey,
    ProviderOptions,
    RequestPlan,
    TeacherError,
    TeacherProvider,
    provider_from_config,
    provider_names,
    provider_union,
    validate_json_object,
)

__all__ = [
    "BudgetExceeded",
    "ChatRequest",
    "ChatResult",
    "InvalidAnswer",
    "ChatSettings",
    "MissingApiKey",
    "ProviderOptions",
    "RequestPlan",
    "TeacherError",
    "TeacherProvider",
    "provider_from_config",
    "provider_names",
    "provider_union",
    "validate_json_object",
]
