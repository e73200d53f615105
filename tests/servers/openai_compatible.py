"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: POST /v1/chat/completions, and the
fine-tuning API (/v1/files, /v1/fine_tuning/jobs; tests/servers/fine_tuning.py).

Scripted behaviours let a test exercise every path of a client: normal answers, 429 then
success, 500, slow answers (timeouts), malformed content, JSON of the wrong shape, and a hang
that never answers (to kill a build mid-run). It counts what it received and what it answered.

    server.answer = lambda body: '{"pairs": [...]}'        # content for normal answers
    server.script("429", "500", Content("not json"))        # the next requests, in order
    server.default = "500"                                 # after the script runs out
    server.latency_s = 0.2                                 # every answer waits this long
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.fine_tuning import FineTuningService


@dataclass(frozen=True)
class Content:
    """Answer 200 with this exact message content (malformed JSON, wrong shapes)."""

    text: str


@dataclass(frozen=True)
class Status:
    """Answer with an HTTP error status, optional headers and a JSON error body."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted error"


@dataclass(frozen=True)
class Slow:
    """Wait this long, then answer normally (longer than the client's timeout: a timeout)."""

    seconds: float


# "ok" | "429" (Retry-After: 0) | "500" | "hang" (never answers until the server stops) | objects above
Behaviour = str | Content | Status | Slow


def _default_answer(body: dict[str, Any]) -> str:
    return json.dumps({"answer": "ok"})


class OpenAICompatibleServer:
    """Start with start() (or use as a context manager); url is the base_url for the client."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.fine_tuning = (
            FineTuningService()
        )  # /files and /fine_tuning/jobs (tests/servers/fine_tuning.py)
        self.answer: Callable[[dict[str, Any]], str] = _default_answer
        self.default: Behaviour = "ok"
        self.received: list[dict[str, Any]] = []  # every request body, in arrival order
        self.answered: list[dict[str, Any]] = []  # bodies that got a complete 200 answer
        self.authorization: list[str] = []  # Authorization headers seen
        self._script: list[Behaviour] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def script(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def reset(self) -> None:
        """Forget counts and script (the answer function and latency stay)."""
        with self._lock:
            self.received.clear()
            self.answered.clear()
            self.authorization.clear()
            self._script.clear()
            self.default = "ok"

    def _next(self, body: dict[str, Any], auth: str) -> Behaviour:
        with self._lock:
            self.received.append(body)
            self.authorization.append(auth)
            return self._script.pop(0) if self._script else self.default

    def start(self) -> OpenAICompatibleServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                where = urlsplit(self.path)
                if where.path.rstrip("/").endswith("/fine_tuning/jobs"):
                    self._send(*server.fine_tuning.list(parse_qs(where.query)))
                    return
                if "/fine_tuning/jobs/" in self.path:
                    self._send(
                        *server.fine_tuning.retrieve(self.path.rstrip("/").rsplit("/", 1)[1])
                    )
                    return
                self._send(
                    404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path.rstrip("/").endswith("/files"):
                    self._send(
                        *server.fine_tuning.upload(self.headers.get("Content-Type", ""), raw)
                    )
                    return
                if self.path.rstrip("/").endswith("/fine_tuning/jobs"):
                    answer = server.fine_tuning.create(json.loads(raw or b"{}"))
                    lost = server.fine_tuning.lost_reply() if answer[0] == 200 else None
                    if lost == "drop":  # the job exists; the client never hears of it
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self._send(
                        *(
                            (500, {"error": {"message": "internal error", "type": "server_error"}})
                            if lost == "500"
                            else answer
                        )
                    )
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(
                        404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                    )
                    return
                body = json.loads(raw or b"{}")
                behaviour = server._next(body, self.headers.get("Authorization", ""))
                if server.latency_s:
                    time.sleep(server.latency_s)
                if behaviour == "hang":
                    server._release.wait()
                    return
                if isinstance(behaviour, Slow):
                    server._release.wait(behaviour.seconds)
                    behaviour = "ok"
                if behaviour == "429":
                    behaviour = Status(429, {"Retry-After": "0"}, "rate limited")
                elif behaviour == "500":
                    behaviour = Status(500, {}, "internal error")
                if isinstance(behaviour, Status):
                    error = {
                        "error": {
                            "message": behaviour.message,
                            "type": "scripted",
                            "code": behaviour.code,
                        }
                    }
                    self._send(behaviour.code, error, behaviour.headers)
                    return
                content = behaviour.text if isinstance(behaviour, Content) else server.answer(body)
                self._send(200, _completion(body, content))
                with server._lock:
                    server.answered.append(body)

            def _send(
                self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) or was killed

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="openai-compatible",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> OpenAICompatibleServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "unknown"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_chars // 4 + 1,
            "completion_tokens": len(content) // 4 + 1,
            "total_tokens": 0,
        },
    }
