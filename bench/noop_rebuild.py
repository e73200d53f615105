"""Cold build and no-op rebuild: `opensem build` against `dvc repro` over 10,000 files totalling 1 GiB.

Sets up everything it needs under bench/.work/ (git-ignored):

- data/bench/docs/: 10,000 deterministic English-like text files, 1 GiB in all (kept across runs);
- manifests/bench.yaml: the tiny demo's manifest with data.sources = data/bench/docs;
- dvc-venv/: DVC in a virtual environment of its own;
- .dvc/, dvc.yaml, dvc_stages/: a git-less DVC project over the same files with two stages
  equivalent to opensem's ingest and split.

Both tools build once (the cold build with --clean: wall time and the peak memory of the command
and every process it started), rebuild once more untimed, then the no-op rebuild is timed --runs
times as the wall time of the real command line (a fresh process each run, as a user would type
it) and the medians are compared, with each other and with a fresh Python process that only
stats every source file (the floor for any tool that checks its inputs). Training on 1 GiB is out of reach
here, so opensem builds `--until split`: the source-heavy part of the graph.

Run from the project root:  .venv/bin/python bench/noop_rebuild.py [--runs 7] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
DOCS = WORK / "data" / "bench" / "docs"
MARKER = WORK / "data" / "bench" / ".complete.json"
MANIFEST = WORK / "manifests" / "bench.yaml"
DVC_VENV = WORK / "dvc-venv"
OPENSEM = Path(sys.executable).parent / "opensem"

FILES = 10_000
TOTAL_BYTES = 1 << 30
SEED = 20240611
SPEC = {"files": FILES, "bytes": TOTAL_BYTES, "seed": SEED, "generator": 1}
VOCAB_SOURCES = [
    ROOT / "opensem" / "tiny_corpus.txt",
    *sorted((ROOT / "data" / "tiny-demo" / "docs").glob("*")),
]

TARGET_SECONDS = 1.0
TARGET_RATIO = 5.0
DVC_ENV = {"DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- data


def _vocabulary() -> tuple[list[bytes], list[float]]:
    """Words of the demo's own texts, Zipf-weighted, with sentence and paragraph ends mixed in."""
    import re

    words: set[str] = set()
    for path in VOCAB_SOURCES:
        if path.is_file():
            words.update(
                w.lower() for w in re.findall(r"[A-Za-z]+", path.read_text(encoding="utf-8"))
            )
    ordered = sorted(words) or ["espresso", "grind", "water", "shot"]
    tokens: list[bytes] = []
    weights: list[float] = []
    for rank, word in enumerate(ordered, start=1):
        base = 1.0 / (1 + (rank * 7919) % len(ordered)) ** 0.9  # a stable pseudo-Zipf order
        for suffix, share in (("", 0.9), (".", 0.09), (".\n\n", 0.01)):
            tokens.append((word + suffix).encode())
            weights.append(base * share)
    total = sum(weights)
    return tokens, [w / total for w in weights]


def _file_size(index: int) -> int:
    base, extra = divmod(TOTAL_BYTES, FILES)
    return base + (1 if index < extra else 0)


def _write_files(indices: list[int]) -> int:
    import numpy as np

    tokens, weights = _vocabulary()
    table = np.array(tokens, dtype=object)
    probabilities = np.array(weights)
    mean = float(probabilities @ np.array([len(t) + 1 for t in tokens]))
    written = 0
    for index in indices:
        size = _file_size(index)
        rng = np.random.default_rng([SEED, index])
        count = int(size / mean * 1.15) + 64
        body = b" ".join(table[rng.choice(len(tokens), count, p=probabilities)].tolist())
        header = f"Document {index:05d}\n\n".encode()
        data = (header + body)[: size - 1] + b"\n"
        (DOCS / f"{index // 1000:02d}" / f"doc-{index:05d}.txt").write_bytes(data)
        written += len(data)
    return written


def ensure_data() -> None:
    """The 10,000 source files; generated once (deterministically) and reused while the marker matches."""
    if MARKER.exists() and json.loads(MARKER.read_text()) == SPEC:
        say(
            f"data: reusing {FILES:,} files ({TOTAL_BYTES / 2**30:.2f} GiB) in {DOCS.relative_to(ROOT)}"
        )
        return
    say(
        f"data: generating {FILES:,} files, {TOTAL_BYTES / 2**30:.2f} GiB in {DOCS.relative_to(ROOT)} ..."
    )
    started = time.perf_counter()
    MARKER.unlink(missing_ok=True)
    shutil.rmtree(DOCS, ignore_errors=True)
    for folder in range((FILES + 999) // 1000):
        (DOCS / f"{folder:02d}").mkdir(parents=True, exist_ok=True)
    batches = [list(range(start, min(start + 250, FILES))) for start in range(0, FILES, 250)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        written = sum(pool.map(_write_files, batches))
    assert written == TOTAL_BYTES, written
    MARKER.write_text(json.dumps(SPEC))
    say(f"data: {written:,} bytes written in {time.perf_counter() - started:.1f} s")


# ---------------------------------------------------------------- opensem

MANIFEST_TEXT = """\
# Benchmark manifest (generated by bench/noop_rebuild.py): the tiny demo over 10,000 files / 1 GiB.
job_id: bench
description: No-op rebuild benchmark over 10,000 generated documents.
base_model:
  tiny:
    hidden_size: 64
    num_layers: 2
    vocab_size: 2000
seed: 42
data:
  sources:
    - path: data/bench/docs
  split:
    test_fraction: 0.1
method_config:
  type: lora
  rank: 8
  dropout: 0.0
training:
  max_steps: 60
  learning_rate: 0.003
  max_seq_length: 256
  logging_steps: 5
compute:
  batch_size: 8
  grad_accum: 1
evaluation:
  batch_size: 16
"""


def opensem_command() -> list[str]:
    return [str(OPENSEM), "build", str(MANIFEST.relative_to(WORK)), "--until", "split"]


def ensure_opensem_project() -> None:
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    if not MANIFEST.exists() or MANIFEST.read_text() != MANIFEST_TEXT:
        MANIFEST.write_text(MANIFEST_TEXT)


# ---------------------------------------------------------------- dvc

INGEST_PY = '''\
"""DVC stage `ingest`: every document under the source folder -> one JSON record per file."""
import hashlib, json, os, sys

root, out = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w", encoding="utf-8") as handle:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            text = open(path, encoding="utf-8").read().strip()
            record = {"id": hashlib.sha256(text.encode()).hexdigest(), "source": os.path.relpath(path, root), "text": text}
            handle.write(json.dumps(record, sort_keys=True) + "\\n")
'''

SPLIT_PY = '''\
"""DVC stage `split`: records -> train/test by a hash of each record id (as opensem's split)."""
import hashlib, json, os, sys

source, train_path, test_path, fraction = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
os.makedirs(os.path.dirname(train_path), exist_ok=True)
with open(source, encoding="utf-8") as records, open(train_path, "w") as train, open(test_path, "w") as test:
    for line in records:
        record_id = json.loads(line)["id"]
        score = int(hashlib.sha256(f"42:{record_id}".encode()).hexdigest()[:16], 16) / 16**16
        (test if score < fraction else train).write(line)
'''

DVC_YAML = """\
stages:
  ingest:
    cmd: {python} dvc_stages/ingest.py data/bench/docs dvc-out/ingest/records.jsonl
    deps:
      - data/bench/docs
      - dvc_stages/ingest.py
    outs:
      - dvc-out/ingest/records.jsonl
  split:
    cmd: {python} dvc_stages/split.py dvc-out/ingest/records.jsonl dvc-out/split/train.jsonl dvc-out/split/test.jsonl 0.1
    deps:
      - dvc-out/ingest/records.jsonl
      - dvc_stages/split.py
    outs:
      - dvc-out/split/train.jsonl
      - dvc-out/split/test.jsonl
"""

# The opensem side of bench/.work is not part of the DVC project; without this, DVC would walk
# opensem's build store and DVC's own virtual environment when it collects the workspace.
DVCIGNORE = "/dvc-venv/\n/build/\n/manifests/\n/profile/\n"


def dvc_bin() -> Path:
    return DVC_VENV / "bin" / "dvc"


def ensure_dvc() -> None:
    """DVC in its own virtual environment (pip install dvc), installed once."""
    if dvc_bin().exists():
        return
    say(
        f"dvc: creating {DVC_VENV.relative_to(ROOT)} and installing dvc (pip; log in .work/dvc-install.log) ..."
    )
    subprocess.run(
        [shutil.which("python3") or sys.executable, "-m", "venv", str(DVC_VENV)], check=True
    )
    with open(WORK / "dvc-install.log", "w") as log:
        subprocess.run(
            [str(DVC_VENV / "bin" / "pip"), "install", "dvc"],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def dvc_env() -> dict[str, str]:
    return {**os.environ, **DVC_ENV}


def ensure_dvc_project() -> None:
    ensure_dvc()
    stages = WORK / "dvc_stages"
    stages.mkdir(exist_ok=True)
    for path, text in (
        (stages / "ingest.py", INGEST_PY),
        (stages / "split.py", SPLIT_PY),
        (WORK / ".dvcignore", DVCIGNORE),
    ):
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    dvc_yaml = DVC_YAML.format(python=DVC_VENV / "bin" / "python")
    if not (WORK / "dvc.yaml").exists() or (WORK / "dvc.yaml").read_text() != dvc_yaml:
        (WORK / "dvc.yaml").write_text(dvc_yaml)
    if not (WORK / ".dvc").is_dir():
        subprocess.run(
            [str(dvc_bin()), "init", "--no-scm", "-q"], cwd=WORK, check=True, env=dvc_env()
        )
    subprocess.run(
        [str(dvc_bin()), "config", "core.analytics", "false"], cwd=WORK, check=True, env=dvc_env()
    )


def dvc_command() -> list[str]:
    return [str(dvc_bin()), "repro"]


# ---------------------------------------------------------------- timing


def run_timed(
    command: list[str], env: dict[str, str] | None = None, show: bool = False
) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=WORK, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {done.returncode}:\n{output}")
    if show:
        say(textwrap.indent(output, "    | "))
    return seconds, output


MEASURED = """\
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kib": peak, "code": done.returncode, "output": done.stdout + done.stderr}))
"""


def run_measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak resident MiB of the command and every process it started, output)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *command],
        cwd=WORK,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    if report["code"] != 0:
        raise SystemExit(
            f"{' '.join(command)} failed with exit code {report['code']}:\n{report['output']}"
        )
    say(textwrap.indent(report["output"].strip(), "    | "))
    return report["seconds"], report["peak_kib"] / 1024, report["output"]


STAT_ALL = """\
import os, sys, time
started = time.perf_counter()
count = 0
for folder, _, names in os.walk(sys.argv[1]):
    for name in names:
        os.stat(os.path.join(folder, name))
        count += 1
print(count, time.perf_counter() - started)
"""


def stat_all_seconds(runs: int) -> float:
    """Median wall time of a fresh Python process that stats every source file."""
    times = [run_timed([sys.executable, "-c", STAT_ALL, str(DOCS)])[0] for _ in range(runs)]
    say(
        f"stat every input: runs {', '.join(f'{t:.3f}' for t in times)} s -> median {statistics.median(times):.3f} s"
    )
    return statistics.median(times)


def median_of(
    label: str, command: list[str], runs: int, env: dict[str, str] | None = None
) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        seconds, output = run_timed(command, env)
        times.append(seconds)
    say(
        f"{label}: no-op runs {', '.join(f'{t:.3f}' for t in times)} s -> median {statistics.median(times):.3f} s"
    )
    return statistics.median(times), times


IN_PROCESS = """\
import sys, time
from pathlib import Path
import opensem.cli, opensem.core.engine, opensem.core.graph, opensem.manifest, doit.doit_cmd, doit.cmd_base, rich.logging
times = []
for _ in range({runs}):
    started = time.perf_counter()
    try:
        opensem.cli.main({argv!r})
    except SystemExit as exit:
        assert not exit.code, exit.code
    times.append(time.perf_counter() - started)
print("IN_PROCESS", " ".join(f"{{t:.4f}}" for t in times))
"""


def opensem_in_process(runs: int) -> list[float]:
    """No-op builds inside one already-started process: the build itself, without start-up and imports."""
    argv = opensem_command()[1:]
    _, output = run_timed([sys.executable, "-c", IN_PROCESS.format(runs=runs, argv=argv)])
    line = next(row for row in output.splitlines() if row.startswith("IN_PROCESS"))
    return [float(x) for x in line.split()[1:]]


def startup_seconds(runs: int) -> tuple[float, float]:
    """Median wall time of `python -c pass` and of importing what `opensem build` imports."""
    bare = [run_timed([sys.executable, "-c", "pass"])[0] for _ in range(runs)]
    imports = (
        "import opensem.cli, opensem.core.engine, opensem.core.graph, opensem.manifest, "
        "doit.doit_cmd, doit.cmd_base, rich.logging"
    )
    loaded = [run_timed([sys.executable, "-c", imports])[0] for _ in range(runs)]
    return statistics.median(bare), statistics.median(loaded)


PROFILE = """\
import cProfile, opensem.cli
profile = cProfile.Profile()
profile.enable()
try:
    opensem.cli.main({argv!r})
except SystemExit:
    pass
profile.disable()
profile.dump_stats({out!r})
"""


def profile_opensem() -> None:
    """cProfile of one no-op build (after imports), top entries by cumulative time; saved in .work/profile/."""
    out = WORK / "profile"
    out.mkdir(exist_ok=True)
    stats_file = out / "noop.prof"
    run_timed(
        [sys.executable, "-c", PROFILE.format(argv=opensem_command()[1:], out=str(stats_file))]
    )
    import pstats

    say(
        f"\nprofile: top 30 by cumulative time of one in-process no-op build ({stats_file.relative_to(ROOT)})"
    )
    pstats.Stats(str(stats_file), stream=sys.stdout).sort_stats("cumulative").print_stats(30)


def describe_first(output: str, noop_marker: str) -> str:
    if noop_marker in output:
        return "nothing to do: built by an earlier run; --clean makes it a cold build"
    return "cold build"


def clean() -> None:
    """Remove both tools' results and caches (the generated sources and DVC's venv stay)."""
    say("clean: removing opensem's build/ and lock, DVC's outputs, cache, state and lock")
    for path in (WORK / "build", WORK / "dvc-out", WORK / ".dvc" / "cache", WORK / ".dvc" / "tmp"):
        if path.exists():
            for dirpath, _, _ in os.walk(path):  # store entries are read-only
                os.chmod(dirpath, 0o755)
            shutil.rmtree(path)
    for path in (WORK / "manifests" / "bench.lock", WORK / "dvc.lock"):
        path.unlink(missing_ok=True)
    if dvc_bin().exists() and (WORK / ".dvc").is_dir():
        # DVC 3 keeps its hash state outside the project (site cache dir); drop it too.
        site = subprocess.run(
            [
                str(DVC_VENV / "bin" / "python"),
                "-c",
                "from dvc.repo import Repo; print(Repo('.').site_cache_dir)",
            ],
            cwd=WORK,
            env=dvc_env(),
            capture_output=True,
            text=True,
        ).stdout.strip()
        if site and Path(site).is_dir() and "dvc" in site:
            shutil.rmtree(site)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs", type=int, default=7, help="timed no-op runs per tool (median; default 7)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of one opensem no-op build"
    )
    parser.add_argument("--skip-dvc", action="store_true", help="time opensem only")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="drop both tools' outputs and caches first, so the first builds are cold",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be >= 1")

    WORK.mkdir(parents=True, exist_ok=True)
    ensure_data()
    ensure_opensem_project()

    if args.clean:
        clean()
    say(f"\nopensem: {' '.join(opensem_command())}  (in {WORK.relative_to(ROOT)})")
    cold, cold_peak, output = run_measured(opensem_command())
    say(
        f"opensem: first build {cold:.1f} s, peak memory {cold_peak:,.0f} MiB "
        f"({describe_first(output, 'Nothing to do')})"
    )
    first_noop, _ = run_timed(opensem_command(), show=True)
    say(f"opensem: first no-op {first_noop:.3f} s (untimed warm-up)")
    opensem_median, _ = median_of("opensem", opensem_command(), args.runs)
    in_process = opensem_in_process(args.runs)
    bare, imported = startup_seconds(args.runs)
    stat_all = stat_all_seconds(args.runs)
    say(
        f"opensem: in-process no-op median {statistics.median(in_process):.3f} s; "
        f"python start-up {bare:.3f} s, start-up + imports {imported:.3f} s"
    )

    dvc_median = cold_dvc = None
    if not args.skip_dvc:
        ensure_dvc_project()
        version = subprocess.run(
            [str(dvc_bin()), "--version"], capture_output=True, text=True, env=dvc_env()
        ).stdout.strip()
        say(f"\ndvc {version}: {' '.join(dvc_command())}  (in {WORK.relative_to(ROOT)})")
        cold_dvc, dvc_peak, output = run_measured(dvc_command(), env=dvc_env())
        say(
            f"dvc: first repro {cold_dvc:.1f} s, peak memory {dvc_peak:,.0f} MiB "
            f"({describe_first(output, 'up to date')})"
        )
        first_dvc, _ = run_timed(dvc_command(), env=dvc_env(), show=True)
        say(f"dvc: first no-op {first_dvc:.3f} s (untimed warm-up)")
        dvc_median, _ = median_of("dvc", dvc_command(), args.runs, env=dvc_env())

    if args.profile:
        profile_opensem()

    say(
        f"\n{FILES:,} files / {TOTAL_BYTES / 2**30:.0f} GiB: first build (cold with --clean), then the no-op "
        f"rebuild, median of {args.runs} runs (wall time of the CLI)"
    )
    rows = [("opensem first build", f"{cold:.1f} s", f"peak memory {cold_peak:,.0f} MiB")]
    if cold_dvc is not None:
        rows.append(("dvc first repro", f"{cold_dvc:.1f} s", f"peak memory {dvc_peak:,.0f} MiB"))
        rows.append(
            (
                "first build opensem / dvc",
                f"{cold / cold_dvc:.2f}x",
                "goal <= 1.00x: " + ("met" if cold <= cold_dvc else "NOT met"),
            )
        )
    rows.append(
        (
            "opensem build --until split",
            f"{opensem_median:.3f} s",
            "target < 1 s: " + ("met" if opensem_median < TARGET_SECONDS else "NOT met"),
        )
    )
    rows.append(("stat every input (fresh python)", f"{stat_all:.3f} s", ""))
    rows.append(
        (
            "no-op opensem / stat-all",
            f"{opensem_median / stat_all:.2f}x",
            "goal <= 1.50x: " + ("met" if opensem_median <= 1.5 * stat_all else "NOT met"),
        )
    )
    if dvc_median is not None:
        ratio = dvc_median / opensem_median
        rows.append(("dvc repro", f"{dvc_median:.3f} s", ""))
        rows.append(
            (
                "ratio dvc / opensem",
                f"{ratio:.1f}x",
                f"target >= {TARGET_RATIO:.0f}x: "
                + ("met" if ratio >= TARGET_RATIO else "NOT met"),
            )
        )
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        say(f"  {name:<{width}}  {value:>9}  {note}")


if __name__ == "__main__":
    main()
