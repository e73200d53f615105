"""Teacher concurrency: 200 requests to a server that answers in 200 ms, concurrency 16 vs sequential.

Both runs go through the real openai provider (official client, retries, cache writes, strict
JSON validation) against the loopback OpenAI-compatible test server, each with an empty cache so
every request is sent. A third run repeats the concurrent batch on the filled cache. Target:
the concurrent batch takes at most a tenth of the sequential time.

    .venv/bin/python bench/teacher_concurrency.py [--requests 200] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opensem.forge.config import synthesis_config  # noqa: E402
from opensem.teachers import ChatRequest, provider_from_config, validate_json_object  # noqa: E402
from tests.servers.openai_compatible import OpenAICompatibleServer  # noqa: E402


def batch(
    server: OpenAICompatibleServer, cache: Path, concurrency: int, count: int
) -> tuple[float, int]:
    """Seconds for one batch of count requests, and how many the server received."""
    config = synthesis_config(
        provider="openai",
        model="bench",
        base_url=server.url,
        api_key_env="BENCH_KEY",
        concurrency=concurrency,
    )
    provider = provider_from_config(config, cache)
    requests = [
        ChatRequest(messages=[{"role": "user", "content": f"question {i}"}]) for i in range(count)
    ]
    before = server.count
    started = time.perf_counter()
    results = provider.complete_many(requests, validate=validate_json_object)
    seconds = time.perf_counter() - started
    assert all(r.ok for r in results), "every answer should be valid"
    return seconds, server.count - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--latency", type=float, default=0.2, help="seconds the server takes per answer"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    os.environ["BENCH_KEY"] = "bench-key"
    with (
        OpenAICompatibleServer(latency_s=args.latency) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        server.answer = lambda body: json.dumps({"answer": body["messages"][-1]["content"]})
        batch(
            server, Path(tmp) / "warmup", args.concurrency, 4
        )  # client import and connection set-up, untimed
        concurrent, sent_c = batch(
            server, Path(tmp) / "concurrent", args.concurrency, args.requests
        )
        sequential, sent_s = batch(server, Path(tmp) / "sequential", 1, args.requests)
        cached, sent_cached = batch(
            server, Path(tmp) / "concurrent", args.concurrency, args.requests
        )
    ideal = args.latency * -(-args.requests // args.concurrency)
    print(f"{args.requests} requests, server latency {args.latency * 1000:.0f} ms")
    print(f"  sequential (concurrency 1):   {sequential:7.2f} s  ({sent_s} requests sent)")
    print(
        f"  concurrency {args.concurrency:<3}              {concurrent:7.2f} s  ({sent_c} requests sent; ideal "
        f"{ideal:.2f} s)"
    )
    print(
        f"  concurrency {args.concurrency}, cached rerun:  {cached:7.2f} s  ({sent_cached} requests sent)"
    )
    ratio = concurrent / sequential
    verdict = "ok" if ratio <= 0.1 else "MISSED"
    print(
        f"concurrent / sequential = {ratio:.3f} (target <= 0.100: {verdict}); speed-up {sequential / concurrent:.1f}x"
    )


if __name__ == "__main__":
    main()
