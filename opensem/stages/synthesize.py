"""The synthesize stage (Data Forge): a teacher turns document chunks into training records.

Document records (chunks from ingest) become instruction pairs, preference triplets or refusal
triplets, depending on the mode; every other record passes through unchanged. Each generated
record carries provenance: the teacher that wrote it, the mode and the chunk it came from. The
teacher's answers are cached under ctx.cache_dir/teacher, so a rebuild after editing one document
pays only for that document's changed chunks, and a killed build resumes without paying twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from opensem.data.formats import make_record, record_kind
from opensem.data.records import write_records
from opensem.errors import DataError
from opensem.forge import budget as budgets
from opensem.forge.config import SynthesisConfig
from opensem.forge.parse import answer_validator, items_validator
from opensem.forge.prompts import rejected_request
from opensem.settings.sections import sections_from
from opensem.stages import register
from opensem.stages.base import StageContext, StageParams, StageResult
from opensem.stages.split import input_records
from opensem.stages.wiring import Wiring
from opensem.teachers.base import ChatResult, TeacherProvider


class SynthesizeParams(StageParams):
    synthesis: SynthesisConfig | None = Field(
        None,
        description=(
            "Data Forge: a teacher turns document chunks into training records; omit to train on "
            "the data as it is."
        ),
    )


@register
class Synthesize:
    """Stage kind `synthesize`: records/records.jsonl -> records.jsonl with documents replaced."""

    name = "synthesize"
    holds = "dataset"
    version = "2"  # 2: params are the synthesis section as written (concurrency, timeout and key variable run settings)
    Params = SynthesizeParams
    sections = sections_from(SynthesizeParams, "synthesis")

    def wire(self, wiring: Wiring) -> None:
        """The synthesize stage, when synthesis is configured."""
        config = wiring.section("synthesis")
        if config is not None:
            teacher = (
                wiring.model_inputs(config.model, ("synthesis", "model"))
                if config.provider == "local"
                else {}
            )
            wiring.add(
                self,
                SynthesizeParams(synthesis=config),
                {"records": wiring.channel("records"), **teacher},
                provides=("records",),
            )

    def run(
        self, wrapped: SynthesizeParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Ask the teacher for records from each document chunk, within the budget."""
        params: Any = wrapped.synthesis
        _, records = input_records(inputs, self.name)
        docs = [r for r in records if record_kind(r) == "document"]
        planned = budgets.plan_synthesis(params, docs, ctx.cache_dir, ctx.project_root)
        provider, requests, found = planned.provider, planned.requests, planned.estimate
        ctx.log.info("synthesize: the teacher is %s", provider.describe())
        label = provider.label()
        n = params.pairs_per_chunk
        prompts = params.prompts.model_dump()
        weak = params.rejected_model if params.mode == "preferences" else None
        if provider.language_model:
            ctx.log.info("synthesize: %d chunks; %s", len(docs), found.describe())
        budgets.check(found, params.budget)

        results = self._ask(
            provider,
            requests,
            items_validator(params.mode, n),
            ctx,
            f"teacher: {params.mode}",
            params.budget.max_requests,
        )
        weak_answers: dict[str, ChatResult] = {}
        if weak:
            sent = sum(r.requests for r in results)
            questions = sorted({item["question"] for r in results if r.ok for item in r.value})
            asks = [rejected_request(prompts, q, weak) for q in questions]
            second = budgets.estimate([provider.plan(asks)], params.budget)
            budgets.check(second, params.budget, already_sent=sent)
            limit = (
                None if params.budget.max_requests is None else params.budget.max_requests - sent
            )
            weak_answers = dict(
                zip(
                    questions,
                    self._ask(provider, asks, answer_validator, ctx, "rejected model", limit),
                )
            )

        by_doc = dict(zip((d["id"] for d in docs), results))
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        counts = {"duplicates": 0, "identical_pairs": 0, "unanswered_questions": 0}
        for record in records:
            made = (
                [record]
                if record_kind(record) != "document"
                else self._records(
                    record, by_doc[record["id"]], params, label, weak_answers, counts
                )
            )
            for item in made:
                if item["id"] in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add(item["id"])
                out.append(item)
        generated = len(out) - (len(records) - len(docs))
        if docs and not generated:
            raise DataError(
                f"the teacher produced no usable records from {len(docs)} chunks",
                hint="every answer was invalid JSON or had the wrong shape; check the prompt templates and the model",
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        write_records(out_dir / "records.jsonl", out)
        return self._result(
            params,
            provider,
            results + list(weak_answers.values()),
            docs,
            records,
            generated,
            counts,
        )

    @staticmethod
    def _ask(
        provider: TeacherProvider,
        requests: list[Any],
        validate: Any,
        ctx: StageContext,
        what: str,
        limit: int | None,
    ) -> list[ChatResult]:
        bar = ctx.progress(what, len(requests))
        try:
            return provider.complete_many(
                requests, validate=validate, on_result=lambda _: bar.advance(), request_limit=limit
            )
        finally:
            bar.close()

    @staticmethod
    def _records(
        doc: dict[str, Any],
        result: ChatResult,
        params: Any,
        label: str,
        weak: dict[str, ChatResult],
        counts: dict[str, int],
    ) -> list[dict[str, Any]]:
        """The records one chunk's answer yields (none when the answer stayed invalid)."""
        if not result.ok:
            return []
        provenance: dict[str, Any] = {"teacher": label, "mode": params.mode, "chunk": doc["id"]}
        made: list[dict[str, Any]] = []
        for item in result.value:
            if params.mode == "instructions":
                messages = [
                    {"role": "user", "content": item["question"]},
                    {"role": "assistant", "content": item["answer"]},
                ]
                made.append(
                    {**make_record(doc["source"], messages=messages), "provenance": provenance}
                )
                continue
            if params.mode == "refusals":
                prompt, chosen, rejected, extra = (
                    item["prompt"],
                    item["refusal"],
                    item["compliance"],
                    {},
                )
            elif params.rejected_model:
                answer = weak.get(item["question"])
                if answer is None or not answer.ok:
                    counts["unanswered_questions"] += 1
                    continue
                prompt, chosen, rejected = item["question"], item["answer"], answer.value
                extra = {
                    "rejected_by": label
                    if label == "offline-template"
                    else f"{label.split(':')[0]}:{params.rejected_model}"
                }
            else:
                prompt, chosen, rejected, extra = (
                    item["question"],
                    item["answer"],
                    item["flawed_answer"],
                    {},
                )
            if chosen.strip() == rejected.strip():
                counts["identical_pairs"] += 1
                continue
            made.append(
                {
                    **make_record(doc["source"], prompt=prompt, chosen=chosen, rejected=rejected),
                    "provenance": {**provenance, **extra},
                }
            )
        return made

    @staticmethod
    def _result(
        params: Any,
        provider: TeacherProvider,
        results: list[ChatResult],
        docs: list[dict[str, Any]],
        records: list[dict[str, Any]],
        generated: int,
        counts: dict[str, int],
    ) -> StageResult:
        chunk_results = results[: len(docs)]
        usage = {
            "requests_sent": sum(r.requests for r in results),
            "cache_hits": sum(r.cache_hits for r in results),
            "invalid_answers": sum(r.invalid for r in results),
            "input_tokens": sum(r.input_tokens for r in results),
            "output_tokens": sum(r.output_tokens for r in results),
        }
        b = params.budget
        cost = (
            usage["input_tokens"] / 1000 * b.price_per_1k_input_tokens
            + usage["output_tokens"] / 1000 * b.price_per_1k_output_tokens
        )
        skipped = sum(1 for r in chunk_results if not r.ok)
        metrics = {
            "teacher": provider.describe(),
            "language_model": provider.language_model,
            "mode": params.mode,
            "chunks": len(docs),
            "skipped_chunks": skipped,
            "generated": generated,
            "passed_through": len(records) - len(docs),
            "records": generated + len(records) - len(docs),
            "cost": round(cost, 6),
            **usage,
            **counts,
        }
        kind = {"instructions": "instruction", "preferences": "preference", "refusals": "refusal"}[
            params.mode
        ]
        summary = f"{generated} {kind} records from {len(docs)} chunks by {provider.describe()}"
        if provider.language_model:
            summary += f"; {usage['requests_sent']} requests sent, {usage['cache_hits']} answers from the cache"
        if skipped:
            summary += f"; {skipped} chunks skipped (invalid answers after retries)"
        if len(records) > len(docs):
            summary += f"; {len(records) - len(docs)} records passed through"
        return StageResult(summary=summary, metrics=metrics)
