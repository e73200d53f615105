"""The data page: documents, "generate the dataset", the generated pairs and the golden set to edit.

The pairs shown are the records as they reach the edits stage (what synthesis, ingest and dedup
made), with the newest action on each from the expert's edits log; editing, deleting or approving
one appends to that log (opensem.data.edits), which is a source of the edits stage, so the next
build applies it and the CLI sees the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from opensem.core.events import CollectingReporter
from opensem.core.graph import StageGraph
from opensem.data.edits import EditAction, append_edits, pair_of, read_edits
from opensem.ui.golden import from_form, golden_file, keep_extras, read_golden, save_golden, suggest
from opensem.ui.web import json_problem, manifest_or_404

PAGE_SIZE = 100
SUGGESTED = 5  # golden questions the "pick from the pairs" button adds


@dataclass
class Pair:
    """A generated record as the table shows it."""

    id: str
    question: str
    answer: str
    source: str
    state: str  # as generated, edited, deleted, approved


def current_outputs(manifest: Path) -> tuple[StageGraph, dict[str, Path]]:
    """A manifest's graph, planned once, and the out/ folder of each stage the store holds for
    the current documents and settings."""
    from opensem.project import load_graph, open_session

    session = open_session(load_graph(manifest), reporter=CollectingReporter())
    plan = session.plan()
    session.digests.save()
    return session.graph, {
        s.name: session.store.out_dir(s.lot)
        for s in plan.stages
        if s.status == "up-to-date" and s.lot is not None
    }


def generated(
    root: Path, name: str, graph: StageGraph, outputs: dict[str, Path]
) -> tuple[list[Pair] | None, str]:
    """The pairs as they reach the edits stage with their newest action (None when the stage
    that makes them is not up to date), and which stage made them."""
    from opensem.core.graph import UpstreamInput
    from opensem.data.records import read_records

    if "split" not in graph.names:
        return None, ""
    feeding = graph.node("split").inputs.get("records")
    if isinstance(feeding, UpstreamInput) and feeding.stage == "edits":
        feeding = graph.node("edits").inputs.get("records")
    if not isinstance(feeding, UpstreamInput):
        return None, ""
    if feeding.stage not in outputs:
        return None, feeding.stage
    records = read_records(outputs[feeding.stage] / "records.jsonl").records
    actions = read_edits(root / "data" / name / "edits")
    pairs = []
    for record in records:
        found = pair_of(record)
        if found is None:
            continue
        action = actions.get(str(record["id"]))
        question, answer = found
        state = "as generated"
        if action is not None:
            state = {"edit": "edited", "delete": "deleted", "approve": "approved"}[action.action]
            question, answer = action.question or question, action.answer or answer
        pairs.append(
            Pair(str(record["id"]), question, answer, str(record.get("source", "")), state)
        )
    return pairs, feeding.stage


def indexed(outputs: dict[str, Path]) -> dict[str, tuple[int, int]]:
    """Pages and chunks of each document (by its path in the project) in the knowledge base the
    current build made; empty when there is none or it is not up to date."""
    import sqlite3

    if "index" not in outputs:
        return {}
    chunks = outputs["index"] / "knowledge" / "chunks.sqlite"
    with sqlite3.connect(f"file:{chunks}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT source, COUNT(*), COUNT(DISTINCT page) FROM chunks GROUP BY source"
        ).fetchall()
    return {str(source): (int(pages), int(count)) for source, count, pages in rows}


def add_data_routes(app: FastAPI) -> None:
    """The data page, its generate button and its edit actions."""
    from opensem.ui.app import require_csrf

    root = app.state.root

    def manifest_of(name: str) -> Path:
        return manifest_or_404(root, name)

    @app.get("/experts/{name}/data", response_class=HTMLResponse)
    async def data_page(request: Request, name: str, page: int = 1) -> HTMLResponse:
        import asyncio

        from opensem.ui.experts import expert_view

        manifest = manifest_of(name)
        graph, outputs = await asyncio.to_thread(current_outputs, manifest)
        pairs, stage = await asyncio.to_thread(generated, root, name, graph, outputs)
        facts = indexed(outputs)
        view = expert_view(root, manifest, app.state.jobs, plan=False)
        raw = f"data/{name}/raw/"
        documents = [(doc, size, facts.get(raw + doc)) for doc, size in view.documents]
        first = (max(page, 1) - 1) * PAGE_SIZE
        context: dict[str, Any] = {
            "expert": view,
            "documents": documents,
            "pairs": None if pairs is None else pairs[first : first + PAGE_SIZE],
            "total": 0 if pairs is None else len(pairs),
            "counts": _counts(pairs or []),
            "stage": stage,
            "page": max(page, 1),
            "pages": max(1, -(-len(pairs or []) // PAGE_SIZE)),
            "golden": read_golden(golden_file(root, name)),
            "suggest": SUGGESTED,
        }
        rendered: HTMLResponse = app.state.page(request, "data.html", context)
        return rendered

    @app.post("/experts/{name}/pairs")
    async def act(request: Request, name: str) -> JSONResponse:
        await require_csrf(request)
        manifest_of(name)
        try:
            action = EditAction.model_validate_json(await request.body())
        except ValidationError as error:
            return json_problem(error)
        folder = root / "data" / name / "edits"
        folder.mkdir(parents=True, exist_ok=True)
        append_edits(folder, [action])
        return JSONResponse({"recorded": action.action, "id": action.id})

    @app.post("/experts/{name}/golden")
    async def save(request: Request, name: str) -> RedirectResponse:
        await require_csrf(request)
        manifest_of(name)
        form = await request.form()
        rows = from_form(form.getlist("question"), form.getlist("answer"))
        path = golden_file(root, name)
        save_golden(path, keep_extras(read_golden(path), rows))
        return RedirectResponse(f"/experts/{name}/data#golden", status_code=303)

    @app.post("/experts/{name}/golden/suggest")
    async def pick(request: Request, name: str) -> RedirectResponse:
        """Golden questions picked from the generated pairs; they leave the training data."""
        import asyncio

        await require_csrf(request)
        manifest = manifest_of(name)
        graph, outputs = await asyncio.to_thread(current_outputs, manifest)
        pairs, _ = await asyncio.to_thread(generated, root, name, graph, outputs)
        if not pairs:
            raise HTTPException(400, "there are no generated pairs yet: generate the dataset first")
        path = golden_file(root, name)
        rows = read_golden(path)
        chosen = suggest(pairs, {str(row.get("question", "")).strip() for row in rows}, SUGGESTED)
        folder = root / "data" / name / "edits"
        folder.mkdir(parents=True, exist_ok=True)
        append_edits(folder, [EditAction(id=pair.id, action="delete") for pair in chosen])
        save_golden(path, rows + [{"question": p.question, "answer": p.answer} for p in chosen])
        return RedirectResponse(f"/experts/{name}/data#golden", status_code=303)


def _counts(pairs: list[Pair]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.state] = counts.get(pair.state, 0) + 1
    return counts
