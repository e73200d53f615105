"""ROUGE-L of opensem.evaluation.metrics against Google's rouge-score package (the reference).

On 3,000 answer pairs built from the demo corpus (random pairs, and shuffled halves of one
answer so the longest common subsequence is non-trivial): the largest difference of the two
F-measures (must be 0: same tokenization, no stemming) and the time of each, with the ratio.
rouge-score is not an opensem dependency: it is installed into bench/.work/rouge-score on first use.

    .venv/bin/python bench/rouge_l.py
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "bench" / ".work" / "rouge-score"


def reference_scorer():  # type: ignore[no-untyped-def]
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        if not (TARGET / "rouge_score").is_dir():
            print(f"installing rouge-score into {TARGET} ...", file=sys.stderr)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--target",
                    str(TARGET),
                    "rouge-score",
                ],
                check=True,
            )
        sys.path.insert(0, str(TARGET))
        from rouge_score import rouge_scorer
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def pairs(count: int) -> list[tuple[str, str]]:
    rows = [
        json.loads(line)
        for line in (ROOT / "data" / "tiny-demo" / "instructions.jsonl").read_text().splitlines()
    ]
    texts = [row["output"] for row in rows] + [row["instruction"] for row in rows]
    rng = random.Random(0)
    out: list[tuple[str, str]] = []
    for _ in range(count):
        first, second = rng.choice(texts), rng.choice(texts)
        if rng.random() < 0.3:
            words = first.split()
            rng.shuffle(words)
            second = " ".join(words[: max(1, len(words) // 2)])
        out.append((first, second))
    return out


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from opensem.evaluation.metrics import rouge_l

    scorer = reference_scorer()
    cases = pairs(3000)
    worst = max(abs(rouge_l(p, r) - scorer.score(r, p)["rougeL"].fmeasure) for p, r in cases)
    timings = {}
    for name, fn in (
        ("opensem", lambda p, r: rouge_l(p, r)),
        ("rouge-score", lambda p, r: scorer.score(r, p)),
    ):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for prediction, reference in cases:
                fn(prediction, reference)
            best = min(best, time.perf_counter() - started)
        timings[name] = best
    print(f"{len(cases)} pairs; largest |F(opensem) - F(rouge-score)| = {worst:.1e}")
    print(
        f"opensem {timings['opensem']:.3f} s, rouge-score {timings['rouge-score']:.3f} s: opensem takes "
        f"{timings['opensem'] / timings['rouge-score']:.2f}x the time"
    )


if __name__ == "__main__":
    main()
