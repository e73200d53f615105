"""What a build would spend at providers, shown before it is started.

An expert whose teacher or training runs at a provider (an OpenAI-compatible API) is built only
after a person has seen the estimate and confirmed it. The figures are the build's own: the
synthesize stage's request plan (only requests its answer cache misses, answers priced at
max_tokens) and provider fine-tuning's token estimate, each with the budget the build enforces
before anything is sent (`synthesis.budget`, `compute.provider.max_cost_usd`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from opensem.accounts.budgets import OverBudget
from opensem.core.graph import StageGraph, UpstreamInput
from opensem.errors import OpensemError
from opensem.ui.job_table import Job
from opensem.ui.web import manifest_or_404

GENERATE = ("ingest", "index", "synthesize", "dedup")  # the data page's partial builds


@dataclass(frozen=True)
class Spend:
    """One stage's use of a provider."""

    stage: str
    what: str  # requests and tokens, in words
    cost: str  # the upper bound, or "not known" while its input is not made yet
    limit: str  # the budget the build enforces
    waits_for: str = ""  # the stage whose output the estimate needs, while it is not made
    usd: float | None = None  # the upper bound in dollars; None while not known or not priced


def total(spends: list[Spend]) -> float | None:
    """What a build may cost at providers at most, in dollars; None when a part is not known."""
    if any(s.usd is None for s in spends):
        return None
    return sum(s.usd or 0.0 for s in spends)


def paid(graph: StageGraph) -> list[str]:
    """Stages that send work to a provider, in build order."""
    from opensem.stages.runner import typed_params

    found = []
    for name in graph.names:
        params = typed_params(graph.node(name))
        synthesis = getattr(params, "synthesis", None)
        compute = getattr(params, "compute", None)
        if (synthesis is not None and synthesis.provider == "openai") or (
            compute is not None and getattr(compute, "backend", None) == "openai"
        ):
            found.append(name)
    return found


def _records(
    graph: StageGraph, stage: str, outputs: dict[str, Path]
) -> list[dict[str, Any]] | None:
    """The records a stage is given (synthesize: records, train: the train split), when the stage
    that makes them is up to date."""
    from opensem.data.records import read_records

    slot, file = ("records", "records.jsonl") if stage != "train" else ("train", "train.jsonl")
    feeding = graph.node(stage).inputs.get(slot)
    if not isinstance(feeding, UpstreamInput) or feeding.stage not in outputs:
        return None
    return read_records(outputs[feeding.stage] / file).records


def upstream(graph: StageGraph, stage: str) -> set[str]:
    """The stage and every stage it needs: what `opensem build --until stage` runs."""
    found: set[str] = set()
    todo = [stage]
    while todo:
        name = todo.pop()
        if name in found or name not in graph.names:
            continue
        found.add(name)
        todo += [i.stage for i in graph.node(name).inputs.values() if isinstance(i, UpstreamInput)]
    return found


def spending(
    graph: StageGraph,
    outputs: dict[str, Path],
    cache_dir: Path | None,
    root: Path,
    until: str | None = None,
) -> list[Spend]:
    """The estimate of every paid stage the build (up to until) would run."""
    from opensem.data.formats import record_kind
    from opensem.data.persona import records_with_persona
    from opensem.forge.budget import plan_synthesis
    from opensem.stages.runner import typed_params
    from opensem.training.provider import ProviderTuning, chat_rows, estimate, usd

    found: list[Spend] = []
    runs = upstream(graph, until) if until else set(graph.names)
    for stage in paid(graph):
        if stage in outputs or stage not in runs:
            continue  # built for these settings, or not part of this build: nothing to pay
        params = typed_params(graph.node(stage))
        records = _records(graph, stage, outputs)
        if getattr(params, "synthesis", None) is not None:
            config = params.synthesis
            budget = config.budget
            limit = (
                ", ".join(
                    f"{key} {value:g}"
                    for key, value in (
                        ("synthesis.budget.max_cost", budget.max_cost),
                        ("synthesis.budget.max_requests", budget.max_requests),
                    )
                    if value is not None
                )
                or "no limit set"
            )
            if records is None:
                found.append(
                    Spend(stage, "the documents are not read yet", "not known", limit, "ingest")
                )
                continue
            documents = [r for r in records if record_kind(r) == "document"]
            planned = plan_synthesis(config, documents, cache_dir, root).estimate
            priced = budget.price_per_1k_input_tokens or budget.price_per_1k_output_tokens
            cost = f"at most {usd(planned.cost)}" if priced else "no prices in synthesis.budget"
            dollars = planned.cost if priced or not planned.requests else None
            found.append(Spend(stage, planned.describe(), cost, limit, usd=dollars))
        else:
            tuning = params.compute.provider or ProviderTuning()
            limit = (
                f"compute.provider.max_cost_usd {usd(tuning.max_cost_usd)}"
                if tuning.max_cost_usd is not None
                else "no limit set"
            )
            if records is None:
                found.append(
                    Spend(stage, "the dataset is not made yet", "not known", limit, "split")
                )
                continue
            with_persona = records_with_persona(records, params.persona)
            tokens, dollars = estimate(chat_rows(with_persona, params.method_config.type), tuning)
            what = f"{len(records)} examples, ~{tokens:,} tokens x {tuning.n_epochs or 3} epochs"
            found.append(Spend(stage, what, f"about {usd(dollars)}", limit, usd=dollars))
    return found


def add_build_routes(app: FastAPI) -> None:
    """POST /experts/{name}/build, and the confirmation page a paid build goes through first."""
    from opensem.core.layout import Layout
    from opensem.ui.app import require_csrf
    from opensem.ui.data import current_outputs

    root: Path = app.state.root

    def estimate(manifest: Path, until: str | None) -> list[Spend]:
        try:
            graph, outputs = current_outputs(manifest)
        except OpensemError:
            return []  # the build job reports the same problem, with its hint, as it fails
        return spending(graph, outputs, Layout(root).build / "cache", root, until)

    async def start(request: Request, name: str, until: str | None) -> Response:
        """A build job, after the person has confirmed what it will spend at providers."""
        import asyncio

        manifest = manifest_or_404(root, name)
        confirmed = (await request.form()).get("accept") == "on"
        spends = await asyncio.to_thread(estimate, manifest, until)
        if spends and not confirmed:
            query = f"?until={until}" if until else ""
            return RedirectResponse(f"/experts/{name}/confirm{query}", status_code=303)
        cost, tenant = total(spends), app.state.tenant
        relative = manifest.relative_to(root).as_posix()

        def queue() -> Job:
            if not spends or tenant is None:
                return app.state.jobs.submit(relative, until=until, cost_usd=cost or 0.0)
            with tenant.spending:  # refused here, before the job exists
                tenant.allowance().check(cost)
                return app.state.jobs.submit(relative, until=until, cost_usd=cost or 0.0)

        job = await asyncio.to_thread(queue)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.post("/experts/{name}/build", response_model=None)
    async def build(request: Request, name: str) -> Response:
        await require_csrf(request)
        until = (await request.form()).get("until")
        if until is not None and until not in GENERATE:
            raise HTTPException(400, f"until must be one of {', '.join(GENERATE)}")
        return await start(request, name, None if until is None else str(until))

    @app.post("/experts/{name}/generate", response_model=None)
    async def generate(request: Request, name: str) -> Response:
        """Part of a build from the data page: read the documents, index them, or make the pairs."""
        await require_csrf(request)
        until = (await request.form()).get("until")
        if until not in GENERATE:
            raise HTTPException(400, f"until must be one of {', '.join(GENERATE)}")
        return await start(request, name, str(until))

    @app.get("/experts/{name}/confirm", response_class=HTMLResponse)
    async def confirm(request: Request, name: str, until: str | None = None) -> HTMLResponse:
        import asyncio

        if until is not None and until not in GENERATE:
            raise HTTPException(400, f"until must be one of {', '.join(GENERATE)}")
        manifest = manifest_or_404(root, name)
        spends = await asyncio.to_thread(estimate, manifest, until)
        context: dict[str, Any] = {
            "name": name,
            "until": until,
            "spends": spends,
            "unread": any(s.waits_for == "ingest" for s in spends),
            "allowance": None,
            "over": None,
        }
        tenant = app.state.tenant
        if tenant is not None:
            allowance = await asyncio.to_thread(tenant.allowance)
            try:
                allowance.check(total(spends))
            except OverBudget as refusal:
                context["over"] = refusal
            context["allowance"] = allowance
        page: HTMLResponse = app.state.page(request, "confirm.html", context)
        return page
