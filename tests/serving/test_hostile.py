"""Hostile input at the edge: every malformed request gets a 4xx in OpenAI's shape, no traceback,
and the requests beside it are answered as if it had not come."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.serving.test_http import AUTH, CHAT, call

NESTED = '{"model": "alpha", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"

MALFORMED: list[tuple[str, str, str, Any, dict[str, str] | None, int]] = [
    (
        "invalid UTF-8",
        "POST",
        "/v1/chat/completions",
        b'{"model": "alpha", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        None,
        400,
    ),
    ("deeply nested JSON", "POST", "/v1/chat/completions", NESTED, None, 400),
    (
        "lone surrogate",
        "POST",
        "/v1/chat/completions",
        '{"model": "alpha", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
        None,
        400,
    ),
    (
        "seed 10**20",
        "POST",
        "/v1/chat/completions",
        {**CHAT, "seed": 10**20, "temperature": 1},
        None,
        400,
    ),
    ("wrong method", "PUT", "/v1/chat/completions", CHAT, None, 405),
    (
        "malformed JSON",
        "POST",
        "/v1/chat/completions",
        '{"model": "alpha", "messages": [',
        None,
        400,
    ),
    (
        "body over the limit",
        "POST",
        "/v1/chat/completions",
        json.dumps({**CHAT, "messages": [{"role": "user", "content": "x" * 3_000_000}]}),
        None,
        413,
    ),
    ("not an object", "POST", "/v1/chat/completions", "[1, 2]", None, 400),
]


@pytest.mark.parametrize(
    "what, method, path, body, headers, status", MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_requests_get_openai_shaped_errors(
    server,
    what: str,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str] | None,
    status: int,
) -> None:
    got, _, raw = call(server.url, method, path, body, headers)
    assert got == status, raw[:300]
    error = json.loads(raw)["error"]
    assert (
        set(error) == {"message", "type", "param", "code"}
        and error["message"]
        and "Traceback" not in raw.decode()
    )
    assert (
        error["param"] is None or not str(error["param"]).isdigit()
    )  # a field, never a character offset
    assert call(server.url, "POST", "/v1/chat/completions", CHAT)[0] == 200  # still serving


def test_a_request_that_fails_inside_a_batch_fails_alone(tiny_model_dir) -> None:
    import logging
    import threading

    from opensem.serving.engine import TransformersEngine
    from opensem.serving.request import Generation

    engine = TransformersEngine(
        str(tiny_model_dir),
        max_batch=8,
        max_queue=16,
        batch_wait_s=0.5,
        log=logging.getLogger("test"),
    )
    try:
        done = threading.Semaphore(0)
        requests = [
            Generation(
                [5, 6, 7],
                None,
                4,
                temperature=1.0,
                seed=10**20 if index == 2 else index,
                on_done=done.release,
            )
            for index in range(4)
        ]
        for request in requests:
            engine.submit(request)
        assert all(done.acquire(timeout=60) for _ in requests)
        assert [type(r.error).__name__ if r.error else None for r in requests] == [
            None,
            None,
            "ValueError",
            None,
        ]  # the seed overflows torch
        assert all(r.completion_tokens == 4 for index, r in enumerate(requests) if index != 2)
    finally:
        engine.close()


def test_a_stream_the_client_left_is_counted_as_left(server) -> None:
    import http.client
    from urllib.parse import urlparse

    where = urlparse(server.url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    connection.request(
        "POST",
        "/v1/chat/completions",
        json.dumps({**CHAT, "stream": True, "max_tokens": 2000, "model": "beta"}),
        AUTH,
    )
    response = connection.getresponse()
    assert response.status == 200 and response.readline().startswith(b"data: ")
    connection.sock.close()  # hang up mid-answer
    connection.close()
    for _ in range(200):
        metrics = call(server.url, "GET", "/metrics")[2].decode()
        if 'inference_requests_total{endpoint="chat",model="beta",status="499"} 1.0' in metrics:
            break
        __import__("time").sleep(0.05)
    assert (
        'model="beta",status="499"} 1.0' in metrics and 'model="beta",status="200"' not in metrics
    )


def test_a_chunked_body_is_cut_as_it_passes_the_limit(server) -> None:
    import http.client
    from urllib.parse import urlparse

    where = urlparse(server.url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    pieces = (
        b'{"model": "alpha", "messages": [{"role": "user", "content": "',
        *(b"x" * 65536 for _ in range(40)),
        b'"}]}',
    )
    connection.request(
        "POST",
        "/v1/chat/completions",
        body=iter(pieces),
        headers={**AUTH, "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    raw = response.read()
    assert response.status == 413 and json.loads(raw)["error"]["code"] == "request_too_large", raw[
        :200
    ]
    assert call(server.url, "POST", "/v1/chat/completions", CHAT)[0] == 200
