"""LLM-as-judge: a judge model scores each answer 1 to 5 against the reference answer.

The judge goes through the teacher provider layer (opensem.teachers), so it speaks to any
OpenAI-compatible endpoint with the same retries, backoff, concurrency and response cache as the
Data Forge; answers are cached by the digest of the full judging prompt, so re-evaluating after
a retrain only pays for answers that changed. Verdicts are parsed strictly: one JSON object with
an integer "score" from 1 to 5. An invalid verdict is re-asked (max_retries), then counted as
invalid and left out of the mean; it never fails the build.

With provider `offline` the judge is a deterministic heuristic (token F1 with the reference mapped
onto 1-5), not a language model; the report says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opensem.core.stage import Progress, silent_progress
from opensem.evaluation.metrics import token_f1

# The rubric when the manifest sets none. Verdicts depend on it and the lot records only that no
# rubric was set: editing this text needs a new version of the baseline and evaluate stages.
DEFAULT_RUBRIC = """You are grading an answer to a question against a reference answer written by an expert.

Question:
{question}

Reference answer:
{reference}

Answer to grade:
{answer}

Score the answer from 1 to 5:
5 = correct and complete; says what the reference says (wording may differ)
4 = correct, with a minor omission or imprecision
3 = partly correct, or correct but with a notable error
2 = mostly wrong, with some relevant content
1 = wrong, irrelevant, empty or not an answer

Reply with only a JSON object: {"score": <integer 1 to 5>, "reason": "<one short sentence>"}"""


def parse_verdict(text: str) -> int:
    """The score of a verdict: exactly one JSON object whose "score" is an integer 1 to 5."""
    from opensem.teachers import InvalidAnswer, validate_json_object

    verdict = validate_json_object(text)
    score = verdict.get("score")
    if isinstance(score, bool) or not isinstance(score, int):
        raise InvalidAnswer(f'"score" must be an integer from 1 to 5, got {score!r}')
    if not 1 <= score <= 5:
        raise InvalidAnswer(f'"score" must be from 1 to 5, got {score}')
    return score


def render_rubric(rubric: str, question: str, reference: str, answer: str) -> str:
    """The judging prompt; plain replacement, so braces elsewhere in the rubric (JSON examples) stay."""
    text = (
        rubric.replace("{question}", "\0q\0")
        .replace("{reference}", "\0r\0")
        .replace("{answer}", "\0a\0")
    )
    return (
        text.replace("\0q\0", question)
        .replace("\0r\0", reference)
        .replace("\0a\0", answer or "(no answer)")
    )


class Judge:
    """Scores (question, reference, answer) triples through a teacher provider; keeps counts."""

    def __init__(
        self,
        config: Any,
        cache_dir: Path | None,
        progress: Any = silent_progress,
        backoff_s: float = 1.0,
        project_root: Path | None = None,
    ) -> None:
        """config is the manifest's evaluation.judge section (opensem.evaluation.config.JudgeConfig)."""
        from opensem.teachers import provider_from_config

        self.config = config
        self.rubric = config.rubric or DEFAULT_RUBRIC
        if config.provider == "offline":
            register_offline_judge()
        self.provider = provider_from_config(config, cache_dir, backoff_s, project_root)
        self.progress = progress
        self.stats = {
            "verdicts": 0,
            "invalid": 0,
            "rejected_answers": 0,
            "requests": 0,
            "cache_hits": 0,
        }

    def describe(self) -> str:
        """What judges, in words, for the report."""
        if not self.provider.language_model:
            return "offline heuristic judge: token F1 with the reference mapped to 1-5 (not a language model)"
        if self.provider.name == "local":
            return (
                f"{self.provider.describe()} (a small local model is a weak judge: invalid "
                "verdicts are counted, and token F1 is the firmer measure)"
            )
        return f"{self.config.model} via {self.provider.describe()}"

    def __call__(self, triples: list[tuple[str, str, str]]) -> list[int | None]:
        """A 1-5 score per (question, reference, answer), None where no valid verdict came back."""
        from opensem.teachers import ChatRequest

        if not triples:
            return []
        requests = [
            ChatRequest(
                messages=[{"role": "user", "content": render_rubric(self.rubric, q, r, a)}],
                context={"task": "judge", "question": q, "reference": r, "answer": a},
            )
            for q, r, a in triples
        ]
        bar: Progress = self.progress("judging", len(requests))
        try:
            results = self.provider.complete_many(
                requests, validate=parse_verdict, on_result=lambda _: bar.advance()
            )
        finally:
            bar.close()
        for result in results:
            self.stats["verdicts"] += 1
            self.stats["invalid"] += 0 if result.ok else 1
            self.stats["rejected_answers"] += result.invalid
            self.stats["requests"] += result.requests
            self.stats["cache_hits"] += result.cache_hits
        return [int(result.value) if result.ok else None for result in results]


def offline_verdict(context: Mapping[str, Any]) -> dict[str, Any]:
    """The offline judge's verdict: 1 + 4 x token F1, rounded; deterministic and honest about it."""
    f1 = token_f1(str(context.get("answer", "")), str(context.get("reference", "")))
    return {
        "score": 1 + round(4 * f1),
        "reason": f"offline heuristic (not a language model): token F1 {f1:.2f} with the reference",
    }


def register_offline_judge() -> None:
    """Teach the offline provider the "judge" task (idempotent)."""
    from opensem.teachers.offline import register_offline_task

    register_offline_task("judge")(offline_verdict)


def judge_for(config: Any, ctx: Any) -> Judge:
    """The judge a stage uses: the manifest's judge section and the shared answer cache."""
    return Judge(config, ctx.cache_dir, ctx.progress, project_root=ctx.project_root)
