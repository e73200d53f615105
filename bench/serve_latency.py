"""Serving: latency and throughput of `opensem serve` on the tiny model, against a bare
`model.generate` loop over the same prompts, and two adapters on one base against two processes.

Setup: the tiny Llama (64 wide, 2 layers) and two random LoRA adapters of it (rank 8 on q, v and
up projections), as two release folders. Every server is the real command (`opensem serve`, the
transformers backend, a fresh process); the clients are asyncio tasks in this process streaming
over bare HTTP connections (so time to first token is seen, and the client's own cost stays
small), plus one run with the official AsyncOpenAI client for comparison. Every request asks for 32 tokens,
greedy, from one of 64 prompts.

1. Latency at 1, 8 and 32 concurrent clients (each sends requests one after another): p50, p95,
   p99 of the whole request and of the first token; throughput in completion tokens/s.
   Peer: a bare loop in one process that loads base + adapter with peft and calls
   model.generate(max_new_tokens=32, greedy) for the same prompts one by one; tokens/s of that.
   Ratio = server tokens/s / bare tokens/s (below 1 at one client is the server's overhead:
   HTTP, SSE, the scheduling thread; above 1 with many clients is what batching buys).
2. Two adapters: one server with both releases against two servers with one each, 16 clients
   split across the two names: peak RSS (VmHWM, summed over processes) and tokens/s; each of the
   two processes gets half the cores (OMP_NUM_THREADS), as two torch processes on one machine must.

GPU figures (vLLM backend, a ~1B model, against vLLM's own server) need CUDA; this script says so.

With --model smollm2 the base is SmolLM2-135M-Instruct (bench/real_model.py) and the adapters
start as peft initialises them (B = 0), so both sides generate the real model's answers.

Run from the project root:  .venv/bin/python bench/serve_latency.py [--requests 64] [--model smollm2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "serve"
KEY = "bench-" + "k" * 40
MAX_TOKENS = 32
TOPICS = [
    "fern",
    "bike chain",
    "cactus",
    "brake pad",
    "orchid",
    "tyre",
    "espresso grind",
    "derailleur",
]
PROMPTS = [
    f"Question {i}: what should I check first on a {TOPICS[i % len(TOPICS)]}, and why?"
    for i in range(64)
]

BARE = """
import json, sys, time, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
release, prompts, max_tokens = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(f"{release}/adapter")
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(f"{release}/base_model/model", dtype=torch.float32), f"{release}/adapter").eval()
encoded = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_tensors="pt", return_dict=True) for p in prompts]
with torch.inference_mode():
    model.generate(**encoded[0], max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.eos_token_id)  # warm-up
    started, tokens = time.perf_counter(), 0
    for ids in encoded:
        out = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        tokens += out.shape[1] - ids["input_ids"].shape[1]
print(json.dumps({"seconds": time.perf_counter() - started, "tokens": tokens}))
"""

BUSY = "import torch\na = torch.randn(512, 512)\nwhile True:\n    a = (a @ a).tanh()\n"


def prepare(model: str) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(BENCH))
    from real_model import smollm2_dir

    from opensem.training.tiny import make_tiny_model
    from tests.adapters import make_adapter

    if model == "smollm2":
        base = smollm2_dir()
    else:
        base = WORK / "base"
        if not (base / "config.json").is_file():
            make_tiny_model(base)
    releases = {}
    for name, seed in (("alpha", 1), ("beta", 2)):
        folder = WORK / model / name
        if not (folder / "adapter" / "adapter_config.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            make_adapter(base, folder / "adapter", rank=8, seed=seed, random=model == "tiny")
            shutil.copytree(base, folder / "base_model" / "model")
            (folder / "manifest.yaml").write_text(
                f"job_id: {name}\nbase_model: ./tiny\n", encoding="utf-8"
            )
        releases[name] = folder
    return releases


class ServerProcess:
    """`opensem serve` in a child process on a free loopback port."""

    def __init__(self, sources: list[str], threads: int | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {
            **os.environ,
            "OPENSEM_API_KEY": KEY,
            **({"OMP_NUM_THREADS": str(threads)} if threads else {}),
        }
        command = [
            str(ROOT / ".venv" / "bin" / "opensem"),
            "serve",
            "--port",
            str(self.port),
            "--cache-dir",
            str(WORK / "cache"),
            *sources,
        ]
        self.log = (WORK / f"serve-{self.port}.log").open(
            "w"
        )  # one JSON line per request: a pipe would fill and block the server
        self.process = subprocess.Popen(
            command, cwd=WORK, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                sys.exit(f"opensem serve stopped:\n{Path(self.log.name).read_text()[-3000:]}")
            try:
                if json.loads(urllib.request.urlopen(self.url + "/health/ready", timeout=1).read())[
                    "ready"
                ]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("opensem serve did not get ready in 120 s")
            time.sleep(0.1)

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return (
            int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
            / 1024
        )

    def batching(self) -> tuple[float, float]:
        """(batches, requests batched) so far, from /metrics."""
        metrics = urllib.request.urlopen(self.url + "/metrics").read().decode()
        values = {
            line.split()[0]: float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("inference_") and " " in line and "{" not in line
        }
        return values["inference_batches_total"], values["inference_requests_batched_total"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


async def raw_stream(url: str, body: dict[str, object]) -> AsyncIterator[dict[str, object]]:
    """One streamed request over a bare asyncio connection: the SSE events as they arrive.

    The load is measured with this minimal client so that what is timed is the server; the
    official client's own parsing is shown separately (it shares the same two cores here)."""
    where = urlparse(url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    payload = json.dumps(body).encode()
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    while (await reader.readline()) not in (b"\r\n", b""):  # status line and headers
        pass
    buffer = b""
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)  # chunked transfer encoding
        if size == 0:
            break
        buffer += await reader.readexactly(size)
        await reader.readexactly(2)
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            if event.startswith(b"data: {"):
                yield json.loads(event[6:])
    writer.close()


async def load(
    urls: dict[str, str], clients: int, requests: int, official: bool = False
) -> dict[str, object]:
    """`clients` concurrent clients sending `requests` in all, alternating model names; timings of each."""
    import openai

    names = list(urls)
    sessions = {
        name: openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=600)
        for name, url in urls.items()
    }
    latencies: list[float] = []
    first_tokens: list[float] = []
    tokens = 0
    queue = list(range(requests))

    async def events(name: str, messages: list[dict[str, str]]) -> AsyncIterator[tuple[bool, int]]:
        """(has content, completion tokens if this is the usage event) per event."""
        settings = {
            "model": name,
            "messages": messages,
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if official:
            async for chunk in await sessions[name].chat.completions.create(**settings):  # type: ignore[call-overload]
                yield (
                    bool(chunk.choices and chunk.choices[0].delta.content),
                    chunk.usage.completion_tokens if chunk.usage else 0,
                )
        else:
            async for event in raw_stream(urls[name], settings):
                choices, usage = event.get("choices") or [], event.get("usage") or {}
                yield (
                    bool(choices and choices[0]["delta"].get("content")),
                    int(usage.get("completion_tokens", 0)),
                )

    async def client() -> None:
        nonlocal tokens
        while queue:
            index = queue.pop()
            name = names[index % len(names)]
            started, first = time.perf_counter(), None
            async for content, used in events(
                name, [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}]
            ):
                if first is None and content:
                    first = time.perf_counter() - started
                tokens += used
            latencies.append(time.perf_counter() - started)
            first_tokens.append(first if first is not None else latencies[-1])

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    for session in sessions.values():
        await session.close()
    return {"latency": latencies, "first": first_tokens, "tokens": tokens, "seconds": seconds}


def pct(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def bare_loop(release: Path, prompts: list[str]) -> float:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(BARE),
            str(release),
            json.dumps(prompts),
            str(MAX_TOKENS),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        sys.exit(f"bare loop failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["tokens"] / result["seconds"]


def latency_bench(
    releases: dict[str, Path], requests: int, client_counts: tuple[int, ...] = (1, 8, 32)
) -> None:
    bare = bare_loop(releases["alpha"], [PROMPTS[i % len(PROMPTS)] for i in range(requests)])
    server = ServerProcess([str(releases["alpha"])])
    try:
        asyncio.run(load({"alpha": server.url}, 4, 8))  # warm-up
        print(
            f"\n1. one adapter, {requests} requests of {MAX_TOKENS} tokens (streamed, greedy); bare model.generate "
            f"loop: {bare:.0f} tokens/s"
        )
        print(
            f"  {'clients':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7}   {'TTFT p50':>8} {'p95':>6} {'p99':>6}   "
            f"{'tokens/s':>8} {'vs bare':>8} {'batch':>6}"
        )
        for clients in client_counts:
            before = server.batching()
            run = asyncio.run(load({"alpha": server.url}, clients, requests))
            after = server.batching()
            lat, first = run["latency"], run["first"]
            rate = run["tokens"] / run["seconds"]
            print(
                f"  {clients:>7} {pct(lat, 50):7.3f} {pct(lat, 95):7.3f} {pct(lat, 99):7.3f}   "
                f"{pct(first, 50):8.3f} {pct(first, 95):6.3f} {pct(first, 99):6.3f}"
                f"   {rate:8.0f} {rate / bare:7.2f}x {(after[1] - before[1]) / (after[0] - before[0]):6.1f}"
            )
        print("  (batch: mean requests per batch, from /metrics)")
        official = asyncio.run(load({"alpha": server.url}, 1, requests, official=True))
        rate = official["tokens"] / official["seconds"]
        print(
            f"  1 client with the official AsyncOpenAI client instead: {rate:.0f} tokens/s ({rate / bare:.2f}x "
            f"bare), p50 {pct(official['latency'], 50):.3f} s"
            " (its parsing shares the 2 cores with the server)"
        )
    finally:
        server.stop()


def two_adapters_bench(releases: dict[str, Path], requests: int) -> None:
    print(
        f"\n2. two adapters, 16 clients split across them, {requests} requests: one server with both against two "
        "servers with one each"
    )
    shared = ServerProcess([str(releases["alpha"]), str(releases["beta"])])
    try:
        asyncio.run(load({"alpha": shared.url, "beta": shared.url}, 4, 8))
        one = asyncio.run(load({"alpha": shared.url, "beta": shared.url}, 16, requests))
        one_rss = shared.peak_rss_mib()
    finally:
        shared.stop()
    threads = max(
        1, (os.cpu_count() or 2) // 2
    )  # the cores split between the two, as an operator would
    apart = [ServerProcess([str(releases[name])], threads=threads) for name in ("alpha", "beta")]
    try:
        asyncio.run(load({"alpha": apart[0].url, "beta": apart[1].url}, 4, 8))
        two = asyncio.run(load({"alpha": apart[0].url, "beta": apart[1].url}, 16, requests))
        two_rss = sum(server.peak_rss_mib() for server in apart)
    finally:
        for server in apart:
            server.stop()
    one_rate, two_rate = one["tokens"] / one["seconds"], two["tokens"] / two["seconds"]
    print(f"  {'':<26} {'peak RSS MiB':>12} {'tokens/s':>9} {'p95 s':>7}")
    print(
        f"  {'one process, one base':<26} {one_rss:12.0f} {one_rate:9.0f} {pct(one['latency'], 95):7.3f}"
    )
    print(
        f"  {f'two processes, {threads} thread(s) each':<26} {two_rss:12.0f} {two_rate:9.0f} "
        f"{pct(two['latency'], 95):7.3f}"
    )
    print(
        f"  shared base: {one_rss / two_rss:.2f}x the memory, {one_rate / two_rate:.2f}x the throughput"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64, help="requests per measurement")
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    parser.add_argument(
        "--clients", default="1,8,32", help="concurrent clients to measure, comma-separated"
    )
    parser.add_argument(
        "--latency-only", action="store_true", help="skip the two-adapter measurement"
    )
    parser.add_argument(
        "--busy",
        action="store_true",
        help="with a second busy process (torch matmuls on every core) beside both sides",
    )
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    releases = prepare(args.model)
    print(f"model: {'SmolLM2-135M-Instruct' if args.model == 'smollm2' else 'the tiny Llama'}")
    busy = subprocess.Popen([sys.executable, "-c", BUSY]) if args.busy else None
    try:
        if busy:
            print("a second process runs torch matmuls on every core throughout")
        latency_bench(releases, args.requests, tuple(int(n) for n in args.clients.split(",")))
    finally:
        if busy:
            busy.kill()
    if not args.latency_only:
        two_adapters_bench(releases, args.requests)
    import torch

    if not torch.cuda.is_available():
        print(
            "\nvLLM backend against vLLM's own server: needs CUDA and the gpu extra; not measured on this machine"
        )


if __name__ == "__main__":
    main()
