"""Serving under hostile input: each malformed request against `opensem serve` (SmolLM2-135M by
default), its status and body shape, and what the server's other clients saw meanwhile.

A client sends normal chat requests (8 tokens, greedy) one after another the whole time; each
hostile request is sent while it runs. Per request: the status, whether the body is OpenAI's
error shape ({"error": {message, type, param, code}}), the server's resident memory after it
(VmRSS), and the p50 latency of the normal requests answered while it was in flight, against
their p50 with no hostile request (the peer: the same server, left alone). A 1 MB prompt is also
sent as a valid request: it must be answered (cut to its end) without stalling the others.

Run from the project root:  .venv/bin/python bench/hostile_requests.py [--model tiny]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from serve_latency import KEY, WORK, ServerProcess, prepare  # noqa: E402

HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
NORMAL = {
    "model": "alpha",
    "messages": [{"role": "user", "content": "How do I fix a flat tyre?"}],
    "max_tokens": 8,
    "temperature": 0,
}


def hostile() -> list[tuple[str, str, Any]]:
    nested = '{"model": "alpha", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return [
        (
            "50 MB body",
            "POST",
            json.dumps({**NORMAL, "messages": [{"role": "user", "content": "x" * 50_000_000}]}),
        ),
        (
            "invalid UTF-8",
            "POST",
            b'{"model": "alpha", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        ),
        ("JSON nested 100,000 deep", "POST", nested),
        (
            "lone surrogate \\ud800",
            "POST",
            '{"model": "alpha", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
        ),
        ("seed 10**20", "POST", {**NORMAL, "seed": 10**20, "temperature": 1}),
        ("malformed JSON", "POST", '{"model": "alpha", "messages": ['),
        ("wrong method (PUT)", "PUT", NORMAL),
        ("body not an object", "POST", "[1, 2]"),
        ("unknown model", "POST", {**NORMAL, "model": "nope"}),
        (
            "1 MB prompt (valid)",
            "POST",
            {
                **NORMAL,
                "messages": [{"role": "user", "content": "espresso " * 110_000 + "How fine?"}],
            },
        ),
    ]


def send(url: str, method: str, body: Any) -> tuple[int, bytes, float]:
    where = urlparse(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=300)
    payload = body if isinstance(body, (str, bytes)) else json.dumps(body)
    started = time.perf_counter()
    connection.request(method, "/v1/chat/completions", body=payload, headers=HEADERS)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    return response.status, raw, time.perf_counter() - started


def openai_shaped(raw: bytes) -> bool:
    try:
        error = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return set(error) == {"message", "type", "param", "code"} and bool(error["message"])


def rss_mib(server: ServerProcess) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return (
        int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
        / 1024
    )


class Neighbour(threading.Thread):
    """Normal requests one after another; (finished at, latency, status) of each."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done, self.stop = url, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            status, _, seconds = send(self.url, "POST", NORMAL)
            self.done.append((time.perf_counter(), seconds, status))

    def between(self, start: float, end: float) -> list[tuple[float, float, int]]:
        return [
            row
            for row in self.done
            if start <= row[0] - row[1] and row[0] - row[1] <= end or start <= row[0] <= end
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="smollm2")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    server = ServerProcess([str(prepare(args.model)["alpha"])])
    neighbour = Neighbour(server.url)
    try:
        for _ in range(3):
            send(server.url, "POST", NORMAL)  # warm-up
        neighbour.start()
        time.sleep(5)
        alone = statistics.median(seconds for _, seconds, _ in neighbour.done)
        print(
            f"model: {args.model}; normal requests alone: p50 {alone:.3f} s, server RSS {rss_mib(server):.0f} MiB\n"
        )
        print(
            f"  {'request':<26} {'status':>6} {'OpenAI shape':>12} {'answered in':>11} {'RSS after MiB':>13} "
            f"{'others p50':>10} {'vs alone':>8} {'others failed':>13}"
        )
        for name, method, body in hostile():
            start = time.perf_counter()
            status, raw, seconds = send(server.url, method, body)
            time.sleep(
                max(1.0, 2 * alone - (time.perf_counter() - start))
            )  # a neighbour request overlaps; the batch has ended
            meanwhile = neighbour.between(start, time.perf_counter())
            p50 = statistics.median(s for _, s, _ in meanwhile) if meanwhile else float("nan")
            failed = sum(1 for *_, code in meanwhile if code != 200)
            shape = "yes" if openai_shaped(raw) else ("(answer)" if status == 200 else "NO")
            print(
                f"  {name:<26} {status:>6} {shape:>12} {seconds:10.3f}s {rss_mib(server):13.0f} {p50:9.3f}s "
                f"{p50 / alone:7.2f}x {failed:>13}"
            )
        log = Path(server.log.name).read_text()
        print(f"\n  tracebacks in the server's log: {log.count('Traceback')}")
    finally:
        neighbour.stop.set()
        server.stop()


if __name__ == "__main__":
    main()
