"""The new-expert page: documents uploaded, a few plain answers, and the manifest the CLI writes.

The form fills the same ExpertAnswers as `opensem init --guided`, so the manifest is the one the
terminal would write. Uploads are checked before anything is written (type, size, name) and land
only inside data/NAME/raw/; a manifest that does not plan is removed with its folder.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from opensem.errors import Location, OpensemError, UsageError
from opensem.manifest.new_expert import BASE_MODELS, Document, ExpertAnswers, create_expert
from opensem.ui import security

GOLDEN_ROWS = 5  # question/answer rows the form offers
MONEY = {
    "teacher_price_in": "price per million prompt tokens",
    "teacher_price_out": "price per million answer tokens",
    "teacher_max_cost": "most one build may spend",
}
CHUNK = 1024 * 1024


def add_create_routes(app: FastAPI) -> None:
    """GET and POST /experts/new."""
    root: Path = app.state.root

    @app.get("/experts/new", response_class=HTMLResponse)
    async def new_expert(request: Request) -> HTMLResponse:
        return _form(request, {}, [])

    @app.post("/experts/new", response_model=None)
    async def create(request: Request) -> Response:
        from opensem.project import load_graph
        from opensem.ui.app import require_csrf

        await require_csrf(request)
        form = await request.form(max_files=64, max_part_size=security.MAX_UPLOAD_BYTES + 1)
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        uploads = [item for item in form.getlist("documents") if isinstance(item, UploadFile)]
        problems: list[str] = []
        answers = _answers(fields, form.getlist("question"), form.getlist("answer"), problems)
        with tempfile.TemporaryDirectory() as scratch:
            documents = await _received(uploads, Path(scratch), problems)
            if problems:
                return _form(request, fields, problems, status=400)
            try:
                create_expert(root, answers, documents, load_graph)
            except OpensemError as error:
                return _form(request, fields, [error.render()], status=400)
        typed = fields.get("teacher_key", "").strip()
        if answers.teacher == "openai" and typed:
            app.state.keys.save(answers.name, answers.teacher_key_env, typed)
        return RedirectResponse(f"/experts/{answers.name}", status_code=303)


def _answers(
    fields: dict[str, str],
    questions: Sequence[object],
    answers: Sequence[object],
    problems: list[str],
) -> ExpertAnswers:
    """The form as the answers guided init collects; what is missing goes to problems."""
    name = fields.get("name", "").strip()
    if not name:
        problems.append("name: give the expert a name (letters, digits, '-' and '_')")
    base = fields.get("base", "tiny")
    if base not in BASE_MODELS:
        problems.append(f"base model: choose one of {', '.join(BASE_MODELS)}")
    golden = [
        {"question": str(q).strip(), "answer": str(a).strip()}
        for q, a in zip(questions, answers, strict=False)
        if str(q).strip()
    ]
    missing = [g["question"] for g in golden if not g["answer"]]
    if missing:
        problems.append(f"golden questions: give the right answer to {missing[0]!r}")
    made = ExpertAnswers(
        name=name,
        description=fields.get("description", "").strip(),
        persona=fields.get("persona", "").strip(),
        base=base,
        knowledge=fields.get("knowledge") == "on",
        golden=golden,
    )
    teacher = fields.get("teacher", "offline")
    if teacher == "openai":
        made.teacher = "openai"
        for key in ("teacher_model", "teacher_base_url", "teacher_key_env"):
            if fields.get(key, "").strip():
                setattr(made, key, fields[key].strip())
        for key, label in MONEY.items():
            text = fields.get(key, "").strip()
            if not text:
                continue
            try:
                amount = float(text)
            except ValueError:
                amount = -1.0
            if not amount >= 0:  # also refuses nan
                problems.append(f"{label}: give an amount in dollars, like 0.15 (not {text!r})")
            else:
                setattr(made, key, amount)
    elif teacher == "local":
        made.teacher = "local"
        made.teacher_model = fields.get("teacher_local_model", "").strip()
        if not made.teacher_model:
            problems.append("teacher: name the local model (a folder, a release or a hub id)")
    elif teacher != "offline":
        problems.append("teacher: choose offline, a local model or an OpenAI-compatible API")
    return made


async def _received(
    uploads: list[UploadFile], scratch: Path, problems: list[str]
) -> list[Document]:
    """The uploads written to scratch under safe names; problems for any refused one."""
    documents: list[Document] = []
    taken: set[str] = set()
    for upload in uploads:
        if not upload.filename:
            continue
        try:
            name = security.safe_name(upload.filename)
            if name in taken:
                raise UsageError(
                    f"two documents are named {name}", Location(key="documents"), "rename one"
                )
            target = security.inside(scratch, name)
            await _copy(upload, target)
        except UsageError as error:
            problems.append(error.render())
            continue
        taken.add(name)
        documents.append(Document(name, target))
    if not documents and not problems:
        problems.append("documents: upload at least one .pdf, .txt or .md file")
    return documents


async def _copy(upload: UploadFile, target: Path) -> None:
    """Write an upload, refusing it as soon as it passes the size limit."""
    written = 0
    with target.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            written += len(chunk)
            if written > security.MAX_UPLOAD_BYTES:
                out.close()
                target.unlink()
                limit = security.MAX_UPLOAD_BYTES // (1024 * 1024)
                raise UsageError(
                    f"{upload.filename} is larger than {limit} MB",
                    Location(key="documents"),
                    "split it, or add it to data/NAME/raw/ by hand",
                )
            out.write(chunk)


def _form(
    request: Request, fields: dict[str, str], problems: list[str], status: int = 200
) -> HTMLResponse:
    page = request.app.state.page
    context = {
        "fields": fields,
        "problems": problems,
        "bases": BASE_MODELS,
        "rows": GOLDEN_ROWS,
        "max_mb": security.MAX_UPLOAD_BYTES // (1024 * 1024),
        "types": ", ".join(security.DOCUMENT_TYPES),
    }
    response: HTMLResponse = page(request, "new.html", context, status=status)
    return response
