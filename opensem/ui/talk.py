"""The chat page's routes: serve a version, ask it (streamed), rate or edit its answer."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opensem.errors import OpensemError
from opensem.ui.chat import Releases
from opensem.ui.experts import expert_view
from opensem.ui.web import json_problem, manifest_or_404

MAX_QUESTION_CHARS = 4000


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(pattern="^(user|assistant)$")
    content: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)


class Ask(BaseModel):
    """A chat turn from the page: the conversation so far, the question last."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1, max_length=40)


class Rate(BaseModel):
    """A rating or an edit of an answer the page was given."""

    model_config = ConfigDict(extra="forbid")

    completion_id: str = Field(min_length=1, max_length=200)
    rating: int | None = Field(None, ge=1, le=5)
    edited: str | None = Field(None, min_length=1, max_length=MAX_QUESTION_CHARS)


def add_chat_routes(app: FastAPI, releases: Releases) -> None:
    """The chat routes of an expert."""
    from opensem.ui.app import require_csrf

    root = app.state.root

    def manifest_of(name: str) -> str:
        return manifest_or_404(root, name).relative_to(root).as_posix()

    @app.post("/experts/{name}/serve")
    async def serve(request: Request, name: str) -> RedirectResponse:
        await require_csrf(request)
        tag = (await request.form()).get("tag")
        chosen = tag if isinstance(tag, str) else ""
        await asyncio.to_thread(releases.serve, name, manifest_of(name), chosen)
        return RedirectResponse(f"/experts/{name}/chat", status_code=303)

    @app.get("/experts/{name}/chat", response_class=HTMLResponse)
    async def chat_page(request: Request, name: str) -> HTMLResponse:
        manifest = root / manifest_of(name)
        view = expert_view(root, manifest, app.state.jobs, plan=False)
        served = releases.get(name)
        context = {
            "expert": view,
            "served": served,
            "state": await asyncio.to_thread(served.state) if served else "not served",
        }
        page: HTMLResponse = app.state.page(request, "chat.html", context)
        return page

    @app.get("/experts/{name}/chat/state")
    async def chat_state(name: str) -> dict[str, Any]:
        manifest_of(name)
        served = releases.get(name)
        if served is None:
            return {"state": "not served"}
        state = await asyncio.to_thread(served.state)
        tail = served.log.read_text(errors="replace")[-2000:] if state == "stopped" else ""
        return {"state": state, "tag": served.tag, "log": tail}

    @app.post("/experts/{name}/chat", response_model=None)
    async def ask(request: Request, name: str) -> StreamingResponse | JSONResponse:
        await require_csrf(request)
        manifest_of(name)
        try:
            body = Ask.model_validate_json(await request.body())
        except ValidationError as error:
            return json_problem(error)
        served = releases.get(name)
        if served is None or await asyncio.to_thread(served.state) != "ready":
            return JSONResponse({"error": "no release of this expert is ready"}, status_code=409)
        messages = [m.model_dump() for m in body.messages]
        return StreamingResponse(
            releases.chat(name, served, messages), media_type="text/event-stream"
        )

    @app.post("/experts/{name}/feedback")
    async def rate(request: Request, name: str) -> JSONResponse:
        await require_csrf(request)
        manifest_of(name)
        try:
            body = Rate.model_validate_json(await request.body())
        except ValidationError as error:
            return json_problem(error)
        served = releases.get(name)
        if served is None:
            return JSONResponse({"error": "no release of this expert is served"}, status_code=409)
        try:
            answer = await releases.feedback(served, body.model_dump(exclude_none=True))
        except OpensemError as error:
            return JSONResponse({"error": error.message}, status_code=400)
        return JSONResponse({"recorded": True, "feedback": answer})
