"""Fault trials: `kill -9` a demo build at random moments, again and again, and check what is left.

Each trial starts `opensem build manifests/tiny-demo.yaml` on a copy of the demo project with an
empty store and kills it (SIGKILL, no chance to clean up) after a random delay within one fresh
build's length, so kills land in every stage: the base model, the embedder, pretraining and
training (between and inside checkpoints), evaluation and publishing. After each kill:

- every store entry must be whole: its meta.json present and its out/ digesting to the recorded
  output (a half entry would be a corrupt one);
- `opensem verify` must run and say what is missing, without a traceback;
- every tenth trial then lets a build run to the end from what the kill left, which must
  succeed (resuming a killed training run from its last checkpoint).

At the end one more build must complete and `opensem verify` pass. Prints the counts (goal 0 corrupt
entries and 0 failed builds). Work goes to bench/.work/kills/ (git-ignored).

Run from the project root:  .venv/bin/python bench/kill_trials.py [--trials 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work" / "kills"
OPENSEM = str(Path(sys.executable).parent / "opensem")
sys.path.insert(0, str(ROOT))


def fresh_project() -> Path:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "manifests").mkdir(parents=True)
    shutil.copytree(ROOT / "data" / "tiny-demo", WORK / "data" / "tiny-demo")
    shutil.copy(ROOT / "manifests" / "tiny-demo.yaml", WORK / "manifests" / "tiny-demo.yaml")
    return WORK


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENSEM, *args], cwd=WORK, capture_output=True, text=True, timeout=timeout
    )


def corrupt_entries() -> list[str]:
    """Store entries that are not whole: meta.json missing or out/ not what the meta records."""
    from opensem.core.digests import DigestCache
    from opensem.core.store import Store

    store, digests, bad = Store(WORK / "build" / "store"), DigestCache(None), []
    for entry in sorted((WORK / "build" / "store").glob("??/*")):
        if not store.has(entry.name) or not store.intact(entry.name, digests):
            bad.append(entry.name[:12])
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    fresh_project()
    started = time.perf_counter()
    full = run("build", "manifests/tiny-demo.yaml")
    length = time.perf_counter() - started
    if full.returncode != 0:
        raise SystemExit(full.stderr[-3000:])
    print(f"a full build takes {length:.1f} s; kills land uniformly within it", flush=True)
    corrupt, failed, tracebacks, killed_in = 0, 0, 0, []
    for trial in range(1, args.trials + 1):
        shutil.rmtree(
            WORK / "build", ignore_errors=True
        )  # every trial from an empty store: kills land anywhere in a build
        (WORK / "manifests" / "tiny-demo.lock").unlink(missing_ok=True)
        build = subprocess.Popen(
            [OPENSEM, "build", "manifests/tiny-demo.yaml"],
            cwd=WORK,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        delay = rng.uniform(0.5, length)
        time.sleep(delay)
        finished = build.poll() is not None
        if not finished:
            os.kill(build.pid, signal.SIGKILL)
        output = build.communicate()[0]
        running = [line.split()[1] for line in output.splitlines() if line.strip().startswith("▶")]
        done = {line.split()[1] for line in output.splitlines() if line.strip().startswith("✓")}
        where = (
            "finished"
            if finished
            else next((name for name in reversed(running) if name not in done), "planning")
        )
        killed_in.append(where)
        bad = corrupt_entries()
        corrupt += len(bad)
        verified = run("verify", "manifests/tiny-demo.yaml", "--no-registry")
        tracebacks += "Traceback" in verified.stdout + verified.stderr
        print(
            f"trial {trial:2d}: killed after {delay:5.1f} s in {where:<13} corrupt entries {len(bad)}  verify exit "
            f"{verified.returncode}",
            flush=True,
        )
        if trial % 10 == 0:
            complete = run("build", "manifests/tiny-demo.yaml")
            failed += complete.returncode != 0
            resumed = "resuming from checkpoint" in complete.stderr
            print(
                "          a build to the end from there: exit "
                f"{complete.returncode}{' (training resumed from a checkpoint)' if resumed else ''}",
                flush=True,
            )
    final = run("build", "manifests/tiny-demo.yaml")  # from the last trial's kill
    failed += final.returncode != 0
    verified = run("verify", "manifests/tiny-demo.yaml")
    print(f"\n{args.trials} kills (stages hit: {', '.join(sorted(set(killed_in)))})")
    print(
        f"corrupt store entries: {corrupt} (goal 0); builds that did not complete afterwards: {failed} (goal 0); "
        f"verify tracebacks: {tracebacks}; final verify exit {verified.returncode}"
    )


if __name__ == "__main__":
    main()
