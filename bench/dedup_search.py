"""Semantic dedup search: SemDeDup clusters on 100,000 x 384 vectors, and exact search beside it on 20,000.

Prints, each measured in a fresh child process (so peak RSS is the search's own, plus the data
and the interpreter):
- clustered search (opensem.curate.search, method "clustered") on 100,000 vectors: seconds and
  peak RSS, against the targets 30 s and 2 GiB;
- on the first 20,000 of them: exact blockwise search (every vector against every kept one) and
  the clustered search; seconds, the speed ratio, and whether the removed sets agree.

The vectors are synthetic but shaped like sentence embeddings (all-MiniLM-L6-v2 on a corpus):
50 themes, 2,000 topics, records around their topic (cosine about 0.5 within a topic, 0.1 across),
plus 4% planted near-copies of other records at cosine 0.90-0.995, so some fall on each side of the
0.95 threshold. `--vectors FILE.npy` runs on real embeddings instead (unit rows, float32).

    .venv/bin/python bench/dedup_search.py            # data generated once into bench/.work/dedup/
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "dedup"
DIM = 384
THRESHOLD = 0.95


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors with planted near-duplicates (see the module docstring)."""
    rng = np.random.default_rng(seed)
    themes = unit(rng.standard_normal((50, DIM)))
    topics = unit(themes[rng.integers(0, 50, 2000)] + rng.standard_normal((2000, DIM)) * 0.07)
    copies = n // 25
    base = n - copies
    x = unit(
        topics[rng.integers(0, 2000, base)]
        + rng.standard_normal((base, DIM)).astype(np.float32) * 0.052
    )
    # Noise s on a unit vector gives cosine about 1 / sqrt(1 + s^2 * DIM): 0.0085 -> 0.987, 0.025 -> 0.89.
    noise = rng.uniform(0.004, 0.024, size=(copies, 1)).astype(np.float32)
    near = unit(
        x[rng.integers(0, base, copies)]
        + rng.standard_normal((copies, DIM)).astype(np.float32) * noise
    )
    mixed = np.concatenate([x, near])
    return mixed[rng.permutation(n)]


def peak_rss_mib() -> float:
    """This process's peak resident set size. VmHWM, because Linux carries ru_maxrss over exec from the parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )  # KiB on Linux, bytes on macOS: a fallback


def child(vectors: Path, count: int, method: str) -> None:
    """Run one search and print {seconds, rss_mib, removed} as JSON (the child side)."""
    sys.path.insert(0, str(ROOT))
    from opensem.curate.search import semantic_dedup

    x = np.load(vectors, mmap_mode="r")[:count]
    x = np.ascontiguousarray(x)
    rank = np.arange(len(x))
    started, cpu = time.perf_counter(), time.process_time()
    result = semantic_dedup(x, rank, THRESHOLD, method=method)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss = peak_rss_mib()
    removed = np.flatnonzero(result.removed)
    np.save(WORK / f"removed-{method}-{count}.npy", removed)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "rss_mib": rss,
                "removed": int(len(removed)),
                "clusters": result.clusters,
                "products": result.products,
            }
        )
    )


def measure(vectors: Path, count: int, method: str) -> dict:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(vectors),
            "--count",
            str(count),
            "--method",
            method,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--vectors",
        type=Path,
        help="a .npy of unit float32 rows to use instead of the synthetic set",
    )
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument(
        "--compare",
        type=int,
        default=20_000,
        help="vectors for the exact-versus-clustered comparison",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="clustered", help=argparse.SUPPRESS)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args.child, args.count, args.method)
        return
    vectors = args.vectors
    if vectors is None:
        vectors = WORK / f"synthetic-{args.count}.npy"
        if not vectors.exists():
            np.save(vectors, synthetic(args.count))
    total = min(args.count, len(np.load(vectors, mmap_mode="r")))
    print(f"semantic dedup search, threshold {THRESHOLD}, {vectors.name}")
    big = measure(vectors, total, "clustered")
    verdict = "ok" if big["seconds"] <= 30 and big["rss_mib"] <= 2048 else "MISSED"
    print(
        f"  clustered {total:>7,} x {DIM}: {big['seconds']:6.2f} s ({big['cpu']:5.1f} s CPU)  peak RSS "
        f"{big['rss_mib']:6.0f} MiB  "
        f"{big['clusters']} clusters, {big['removed']:,} removed   (targets 30 s, 2048 MiB: {verdict})"
    )
    compare = min(args.compare, total)
    exact = measure(vectors, compare, "exact")
    clustered = measure(vectors, compare, "clustered")
    a = set(np.load(WORK / f"removed-exact-{compare}.npy").tolist())
    b = set(np.load(WORK / f"removed-clustered-{compare}.npy").tolist())
    agree = (
        "identical" if a == b else f"differ: {len(a - b)} only exact, {len(b - a)} only clustered"
    )
    print(
        f"  exact     {compare:>7,} x {DIM}: {exact['seconds']:6.2f} s ({exact['cpu']:5.1f} s CPU)  peak RSS "
        f"{exact['rss_mib']:6.0f} MiB  {exact['removed']:,} removed"
    )
    print(
        f"  clustered {compare:>7,} x {DIM}: {clustered['seconds']:6.2f} s ({clustered['cpu']:5.1f} s CPU)  peak "
        f"RSS {clustered['rss_mib']:6.0f} MiB  {clustered['removed']:,} removed"
    )
    print(
        f"  exact / clustered time on {compare:,}: {exact['seconds'] / clustered['seconds']:.1f}x; removed sets {agree}"
    )


if __name__ == "__main__":
    main()
