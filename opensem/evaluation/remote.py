"""Answers from a model behind a provider (a provider-tuned expert and its base model): the same
questions, the same generation settings, through the teacher provider layer (retries, cache)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opensem.errors import StageError
from opensem.evaluation.items import Item
from opensem.training.generation import GenerationSettings


def provider_answers(
    endpoint: Any,
    model: str,
    settings: GenerationSettings,
    cache_dir: Path | None,
    advance: Callable[[int], None],
) -> Callable[[Sequence[Item]], list[str]]:
    """A function answering items with `model` at the endpoint (base_url, api_key_env)."""
    from opensem.evaluation.config import judge_config
    from opensem.teachers import ChatRequest, provider_from_config

    config = judge_config(
        provider="openai",
        model=model,
        base_url=endpoint.base_url,
        api_key_env=endpoint.api_key_env,
        temperature=settings.temperature,
        max_tokens=settings.max_new_tokens,
    )
    provider = provider_from_config(config, cache_dir)

    def answer(items: Sequence[Item]) -> list[str]:
        results = provider.complete_many(
            [ChatRequest(messages=list(item.messages)) for item in items],
            on_result=lambda _: advance(1),
        )
        missing = [item.id for item, result in zip(items, results) if result.text is None]
        if missing:
            raise StageError(
                f"{model} gave no answer for {len(missing)} questions ({', '.join(missing[:3])}...)",
                hint="check the provider's status and retry",
            )
        return [str(result.text).strip() for result in results]

    return answer


def provider_model(folder: Path) -> dict[str, Any] | None:
    """The provider-tuned model a train output names (provider_model.json), if it is one."""
    import json

    from opensem.training.provider import PROVIDER_MODEL

    path = folder / PROVIDER_MODEL
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
