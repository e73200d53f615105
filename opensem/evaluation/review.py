"""How a release does on the prompts its predecessor got feedback on.

For every prompt whose answer was edited, both releases (the one that answered, and the new one)
are scored on the edited answer: its perplexity given the prompt (answer tokens only; lower is
better) and the token F1 of a greedy answer against it. The new release learned from those edits,
so this says whether feedback did what it was given for; the held-out golden set (evaluate) says
whether it cost anything elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from opensem.evaluation.metrics import mean, token_f1
from opensem.training.generation import GenerationSettings, generate_answers, prompt_ids


def answer_nll(
    model: Any, tokenizer: Any, prompt: Sequence[dict[str, str]], answer: str, max_length: int
) -> tuple[float, int]:
    """Summed negative log-likelihood of the answer's tokens after the prompt, and their count."""
    import torch

    context = prompt_ids(prompt, tokenizer, max_length)
    full = (
        str(
            tokenizer.apply_chat_template(
                [*prompt, {"role": "assistant", "content": answer}], tokenize=False
            )
        )
        if getattr(tokenizer, "chat_template", None)
        else None
    )
    ids = (
        list(tokenizer(full, add_special_tokens=False)["input_ids"])
        if full
        else context + list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    )
    # A template that renders the prompt differently once answered: score the answer alone after it
    if ids[: len(context)] != context:
        ids = context + list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    ids = ids[:max_length]
    if len(ids) <= len(context):
        return 0.0, 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, :-1].float()
    targets = torch.tensor(ids[1:], device=device)
    losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")[
        len(context) - 1 :
    ]
    return float(losses.sum()), int(losses.numel())


def score_release(
    model: Any, tokenizer: Any, items: list[dict[str, Any]], settings: GenerationSettings, bar: Any
) -> dict[str, Any]:
    """Perplexity of the edited answers and token F1 of greedy answers against them, with each item's figures."""
    prompts = [item["messages"] for item in items]
    answers = generate_answers(model, tokenizer, prompts, settings, bar)
    total, count, rows = 0.0, 0, []
    for item, answer in zip(items, answers):
        nll, tokens = answer_nll(
            model, tokenizer, item["messages"], item["edited"], settings.max_seq_length
        )
        total, count = total + nll, count + tokens
        rows.append(
            {
                "answer": answer,
                "token_f1": token_f1(answer, item["edited"]),
                "perplexity": math.exp(nll / tokens) if tokens else None,
            }
        )
        bar.advance(1)
    return {
        "perplexity": math.exp(total / count) if count else None,
        "token_f1": mean(float(r["token_f1"]) for r in rows),  # type: ignore[arg-type]
        "items": rows,
    }


def review_markdown(review: dict[str, Any]) -> str:
    """The review as Markdown: the previous release and this build on the feedback."""
    previous, new = review["previous"], review["new"]
    lines = [
        f"## Feedback: the previous release against this one, on {review['prompts']} edited answers",
        "",
        "| | previous | this release |",
        "|---|---|---|",
        f"| release | {previous['tag']} (`{previous['lot'][:12]}`) | this build |",
        f"| perplexity of the edited answers (lower is better) | {previous['perplexity']:.2f} | "
        f"{new['perplexity']:.2f} |",
        f"| token F1 of a greedy answer vs the edit | {previous['token_f1']:.3f} | {new['token_f1']:.3f} |",
    ]
    return "\n".join(lines) + "\n"
