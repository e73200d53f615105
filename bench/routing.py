"""Routing: accuracy of the keyword, neural and hybrid classifiers on held-out golden questions of
three experts (the espresso demo, houseplants, bike repair), their classification latency, and
the router's added latency on /v1/chat/completions against calling the expert directly.

Accuracy: each expert's golden questions are split by a digest of the question, half to train
(the neural head) and half to score, as `opensem route eval` does; the neural classifier is also
scored untrained (references only). Latency: every held-out question classified 20 times, the
neural query cache emptied before each call so each one embeds (p50, p99 per classifier; goals:
keyword < 5 ms, neural < 20 ms). Router overhead: `opensem serve` with the houseplants-like tiny
release in one process and `opensem route serve` in another (both the real commands); 100
sequential non-streamed chat completions of 1 token over bare HTTP, straight to the expert and
through the router with model `auto`, once on the keyword fast path and once through the neural
path (goal: < 10 ms added at the median).

Run from the project root:  .venv/bin/python bench/routing.py
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "routing"
KEY = "bench-" + "k" * 40
sys.path.insert(0, str(ROOT))


def experts() -> list:  # type: ignore[type-arg]
    from opensem.project import expert_from_manifest

    return [
        expert_from_manifest(ROOT / "manifests" / f"{job}.yaml")
        for job in ("tiny-demo", "houseplants", "bike-repair")
    ]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def accuracy_and_latency() -> None:
    from opensem.console import console
    from opensem.routing.classifiers import build_classifier
    from opensem.routing.classifiers.hybrid import HybridOptions
    from opensem.routing.classifiers.keyword import KeywordOptions
    from opensem.routing.classifiers.neural import NeuralOptions
    from opensem.routing.evaluate import confusion_table, held_out_split, score

    found = experts()
    train, test = held_out_split(found)
    print(f"3 experts; {len(train)} golden questions to train on, {len(test)} held out\n")
    untrained = score(build_classifier(NeuralOptions(), found, WORK), test)
    print(
        f"neural, untrained (description, domains and 4 examples per expert only): {untrained.accuracy:.1%}"
    )
    rows = []
    for options in (KeywordOptions(), NeuralOptions(), HybridOptions()):
        classifier = build_classifier(options, found, WORK)
        classifier.train(train)
        result = score(classifier, test)
        console.print(confusion_table(result, [e.name for e in found]))
        neural = getattr(classifier, "neural", classifier if options.type == "neural" else None)
        times = []
        for _ in range(20):
            for question, _ in test:
                if neural is not None:
                    neural.queries.clear()  # every call embeds
                started = time.perf_counter()
                classifier.classify(question)
                times.append((time.perf_counter() - started) * 1000)
        rows.append((options.type, result.accuracy, pct(times, 50), pct(times, 99)))
    goals = {"keyword": 5.0, "neural": 20.0, "hybrid": 20.0}
    print(f"\n  {'classifier':<10} {'accuracy':>9} {'p50 ms':>8} {'p99 ms':>8}   goal")
    for name, accuracy, p50, p99 in rows:
        verdict = "ok" if p50 < goals[name] and (name != "hybrid" or accuracy >= 0.95) else "MISSED"
        print(
            f"  {name:<10} {accuracy:9.1%} {p50:8.2f} {p99:8.2f}   p50 < {goals[name]:.0f} "
            f"ms{', accuracy >= 95%' if name == 'hybrid' else ''}: {verdict}"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], port: int, name: str) -> subprocess.Popen:  # type: ignore[type-arg]
    log = (WORK / f"{name}.log").open("w")
    process = subprocess.Popen(
        command,
        cwd=WORK,
        env={**os.environ, "OPENSEM_API_KEY": KEY},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name} stopped:\n{(WORK / f'{name}.log').read_text()[-3000:]}")
        try:
            health = json.loads(
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            )
            if health.get("ready", True):
                return process
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{name} did not start")


def timed(port: int, body: dict) -> float:  # type: ignore[type-arg]
    connection = http.client.HTTPConnection("127.0.0.1", port)
    payload = json.dumps(body)
    started = time.perf_counter()
    connection.request(
        "POST",
        "/v1/chat/completions",
        payload,
        {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status
    connection.close()
    return (time.perf_counter() - started) * 1000


def router_overhead() -> None:
    sys.path.insert(0, str(BENCH))
    from serve_latency import prepare

    release = prepare("tiny")["alpha"]
    opensem = str(ROOT / ".venv" / "bin" / "opensem")
    expert_port, router_port = free_port(), free_port()
    registry = WORK / "experts.yaml"
    houseplants = next(e for e in experts() if e.name == "houseplants")
    entry = houseplants.model_copy(
        update={
            "name": "alpha",
            "endpoint": f"http://127.0.0.1:{expert_port}",
            "model_path": str(release),
        }
    )
    others = [
        e.model_copy(update={"endpoint": f"http://127.0.0.1:{expert_port}"})
        for e in experts()
        if e.name != "houseplants"
    ]
    from opensem.routing.registry import ExpertRegistry, save_registry

    save_registry(ExpertRegistry(experts=[entry, *others]), registry)
    server = start(
        [opensem, "serve", "--port", str(expert_port), str(release)], expert_port, "expert"
    )
    router = start(
        [opensem, "route", "serve", "--registry", str(registry), "--port", str(router_port)],
        router_port,
        "router",
    )
    try:
        fast = {
            "model": "auto",
            "messages": [{"role": "user", "content": "repot my plant: which soil and pot?"}],
            "max_tokens": 1,
            "temperature": 0,
        }
        slow = {
            "model": "auto",
            "messages": [{"role": "user", "content": "my orchid looks sad"}],
            "max_tokens": 1,
            "temperature": 0,
        }
        direct = {**fast, "model": "alpha"}
        for body, port in ((direct, expert_port), (fast, router_port), (slow, router_port)):
            for _ in range(10):
                timed(port, body)  # warm-up
        results = {
            name: [timed(port, body) for _ in range(100)]
            for name, body, port in (
                ("direct", direct, expert_port),
                ("keyword path", fast, router_port),
            )
        }
        fresh = [
            {**slow, "messages": [{"role": "user", "content": f"my orchid number {i} looks sad"}]}
            for i in range(100)
        ]  # each one embeds
        results["neural path"] = [timed(router_port, body) for body in fresh]
    finally:
        for process in (router, server):
            process.terminate()
            process.wait(timeout=30)
    base = statistics.median(results["direct"])
    print("\nrouter overhead: 100 sequential chat completions of 1 token, bare HTTP")
    print(f"  {'':<14} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10}")
    for name, times in results.items():
        added = statistics.median(times) - base
        verdict = (
            ""
            if name == "direct"
            else ("  (goal < 10 ms: ok)" if added < 10 else "  (goal < 10 ms: MISSED)")
        )
        print(
            f"  {name:<14} {statistics.median(times):8.2f} {pct(times, 99):8.2f} {added:10.2f}{verdict}"
        )


if __name__ == "__main__":
    WORK.mkdir(parents=True, exist_ok=True)
    accuracy_and_latency()
    router_overhead()
