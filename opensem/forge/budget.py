"""The teacher budget: what a build would send and cost, checked before anything is spent.

Only requests that miss the response cache count. The cost estimate is an upper bound: prompt
tokens estimated from the text (4 characters a token) plus every answer at max_tokens, each at
the manifest's price per 1,000 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensem.forge.config import BudgetConfig, SynthesisConfig
from opensem.forge.prompts import chunk_request, rejected_request
from opensem.teachers.base import (
    BudgetExceeded,
    ChatRequest,
    RequestPlan,
    TeacherProvider,
    provider_from_config,
    request_tokens,
)

TYPICAL_QUESTION_CHARS = 120  # for the budget of a weaker model's questions, before they exist


@dataclass(frozen=True)
class Estimate:
    requests: int  # to send
    cached: int
    input_tokens: int
    max_output_tokens: int
    cost: float  # upper bound, in the manifest's currency; 0 when no price is set

    def describe(self) -> str:
        """What synthesis will send and cost, in one line."""
        text = f"{self.requests} requests to send ({self.cached} answered from the cache)"
        if self.requests:
            text += f", about {self.input_tokens:,} prompt tokens, at most {self.max_output_tokens:,} answer tokens"
        if self.cost:
            text += f", estimated cost at most {self.cost:.4f}"
        return text


@dataclass(frozen=True)
class SynthesisPlan:
    """What synthesis of some document chunks would ask, of whom, at what cost."""

    provider: TeacherProvider
    requests: list[ChatRequest]
    estimate: Estimate


def plan_synthesis(
    config: SynthesisConfig,
    documents: list[dict[str, Any]],
    cache_dir: Path | None,
    project_root: Path | None,
) -> SynthesisPlan:
    """The requests for the chunks and their estimate (the build's check, and the interface's
    confirmation before a paid build); sends nothing and needs no key."""
    provider = provider_from_config(config, cache_dir, project_root=project_root)
    prompts = config.prompts.model_dump()
    n = config.pairs_per_chunk
    requests = [chunk_request(prompts, config.mode, d["text"], d["source"], n) for d in documents]
    plans = [provider.plan(requests)]
    weak = config.rejected_model if config.mode == "preferences" else None
    # The weaker model's questions are unknown yet: n per new chunk, typical length
    if weak and plans[0].to_send:
        asks = plans[0].to_send * n
        per = request_tokens(rejected_request(prompts, "q" * TYPICAL_QUESTION_CHARS, weak))
        plans.append(RequestPlan(asks, asks, asks * per, asks * config.max_tokens))
    return SynthesisPlan(provider, requests, estimate(plans, config.budget))


def estimate(plans: list[RequestPlan], budget: BudgetConfig) -> Estimate:
    """Sum the request plans of a build's phases and price them."""
    requests = sum(p.to_send for p in plans)
    input_tokens = sum(p.input_tokens for p in plans)
    output_tokens = sum(p.max_output_tokens for p in plans)
    cost = (
        input_tokens / 1000 * budget.price_per_1k_input_tokens
        + output_tokens / 1000 * budget.price_per_1k_output_tokens
    )
    return Estimate(
        requests,
        sum(p.total - p.to_send for p in plans),
        input_tokens,
        output_tokens,
        round(cost, 6),
    )


def check(found: Estimate, budget: BudgetConfig, already_sent: int = 0) -> None:
    """Raise BudgetExceeded, before any request, when the estimate is over a limit."""
    if budget.max_requests is not None and already_sent + found.requests > budget.max_requests:
        raise BudgetExceeded(
            f"the teacher budget is exceeded before spending: {already_sent + found.requests} requests needed, "
            f"synthesis.budget.max_requests is {budget.max_requests} ({found.describe()})",
            hint=(
                "raise synthesis.budget.max_requests, lower pairs_per_chunk or chunk fewer "
                "documents; nothing was sent"
            ),
        )
    if budget.max_cost is not None and found.cost > budget.max_cost:
        raise BudgetExceeded(
            f"the teacher budget is exceeded before spending: estimated cost up to {found.cost:.4f}, "
            f"synthesis.budget.max_cost is {budget.max_cost:g} ({found.describe()})",
            hint=(
                "raise synthesis.budget.max_cost or lower max_tokens (answers are priced at "
                "max_tokens); nothing was sent"
            ),
        )
