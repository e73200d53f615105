"""Talking to a release from the browser: `opensem serve` run for it, and the chat relayed.

"Serve this version" starts `opensem serve manifests/NAME.yaml@TAG --record-answers` on a free
local port, with an API key only this interface knows; serving an older tag is the rollback. The
chat page's questions go through the interface (CSRF-checked) to that server with the official
OpenAI client, streamed back as server-sent events with the release's sources at the end; a
rating or an edit goes to the server's /v1/feedback, which files it where `opensem feedback`
puts it, with the lot that answered.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensem.errors import Location, UsageError
from opensem.training.launch import free_port

KEY_ENV = "OPENSEM_UI_SERVE_KEY"
READY_S = 600  # the longest a release may take to load


@dataclass
class ServedRelease:
    """A server process for one tag of one expert."""

    tag: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    started: float

    @property
    def url(self) -> str:
        """The server's OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def state(self) -> str:
        """loading, ready or stopped (with its log saying why)."""
        if self.process.poll() is not None:
            return "stopped"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/ready", timeout=2):
                return "ready"
        except OSError:
            return "loading"


class Releases:
    """The releases this interface serves: at most one tag per expert."""

    def __init__(self, project_root: Path) -> None:
        self.root = project_root
        self.key = secrets.token_urlsafe(24)
        self.served: dict[str, ServedRelease] = {}
        self.folder = project_root / "build" / "ui" / "serve"

    def serve(self, name: str, manifest: str, tag: str) -> ServedRelease:
        """Serve tag of an expert (the one served before stops)."""
        if not tag or any(c in tag for c in "/\\@#") or tag.startswith("."):
            raise UsageError(f"no release tag {tag!r}", Location(key="tag"), "pick a listed tag")
        self.stop(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = self.folder / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "opensem",
            "serve",
            f"{manifest}@{tag}",
            "--port",
            str(port),
            "--api-key-env",
            KEY_ENV,
            "--record-answers",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, KEY_ENV: self.key, "NO_COLOR": "1"},
            )
        self.served[name] = ServedRelease(tag, port, process, log, time.time())
        return self.served[name]

    def get(self, name: str) -> ServedRelease | None:
        """What is served of an expert."""
        return self.served.get(name)

    def stop(self, name: str) -> None:
        """Stop serving an expert."""
        served = self.served.pop(name, None)
        if served is not None and served.process.poll() is None:
            served.process.terminate()
            try:
                served.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                served.process.kill()

    def stop_all(self) -> None:
        """Stop every server (the interface is stopping)."""
        for name in list(self.served):
            self.stop(name)

    def client(self, served: ServedRelease) -> Any:
        """The official OpenAI client for a served release."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=served.url, api_key=self.key, max_retries=0, timeout=300)

    async def chat(
        self, name: str, served: ServedRelease, messages: list[dict[str, str]]
    ) -> AsyncIterator[str]:
        """A streamed answer as server-sent events: text deltas, then the completion id and its
        sources; an error event when the server refuses."""
        from openai import OpenAIError

        client = self.client(served)
        try:
            stream = await client.chat.completions.create(
                model=name, messages=messages, stream=True, max_tokens=160
            )
            completion_id, sources = "", list[Any]()
            async for chunk in stream:
                completion_id = chunk.id or completion_id
                extra = chunk.model_extra or {}
                sources = extra.get("sources") or sources
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield _event({"text": choice.delta.content})
            yield _event({"done": True, "id": completion_id, "sources": sources})
        except OpenAIError as error:
            yield _event({"error": _message(error)})
        finally:
            await client.close()

    async def feedback(self, served: ServedRelease, body: dict[str, Any]) -> dict[str, Any]:
        """Relay a rating or an edit to the server's /v1/feedback."""
        from openai import OpenAIError

        client = self.client(served)
        try:
            answer: dict[str, Any] = await client.post("/feedback", body=body, cast_to=object)
            return answer
        except OpenAIError as error:
            raise UsageError(_message(error), Location(key="feedback"), "") from None
        finally:
            await client.close()


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _message(error: Exception) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        return str(body.get("message") or (body.get("error") or {}).get("message") or error)
    return str(error)
