"""The knowledge base on the real-model demo: recall@5, MRR, citation precision and golden token F1
for base, base + retrieval, expert and expert + retrieval.

Builds a copy of manifests/espresso.yaml (SmolLM2-135M-Instruct) with `knowledge: {search:
{top_k: 5}}`, over the same documents, with the same twelve golden questions, each naming the
document that answers it (the demo's own golden file names none, and stays as it is), and prints
the ground stage's table.

    .venv/bin/python bench/knowledge_demo.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "knowledge-demo"
# The document that answers each golden question, in the golden file's order.
SOURCES = [
    "04-extraction-time.txt",
    "09-sour-shots.txt",
    "10-bitter-shots.txt",
    "02-dose-and-ratio.md",
    "03-water.md",
    "07-milk-steaming.md",
    "06-beans-and-freshness.md",
    "05-puck-preparation.md",
    "01-grind-size.md",
    "08-cleaning.md",
    "03-water.md",
    "12-espresso-drinks.md",
]


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "manifests").mkdir(parents=True)
    shutil.copytree(ROOT / "data" / "tiny-demo", WORK / "data" / "tiny-demo")
    golden = WORK / "data" / "espresso-golden"
    golden.mkdir(parents=True)
    items = [json.loads(line) for line in (ROOT / "data/tiny-demo/golden/golden.jsonl").open()]
    assert len(items) == len(SOURCES)
    (golden / "golden.jsonl").write_text(
        "".join(json.dumps({**item, "source": s}) + "\n" for item, s in zip(items, SOURCES))
    )
    manifest = (ROOT / "manifests" / "espresso.yaml").read_text()
    manifest = manifest.replace("golden: data/tiny-demo/golden", "golden: data/espresso-golden")
    manifest += "\nknowledge:\n  search: {top_k: 5}\n"
    (WORK / "manifests" / "espresso.yaml").write_text(manifest)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "opensem", "build", "manifests/espresso.yaml", "--until", "ground"],
        cwd=WORK,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    lock = json.loads((WORK / "manifests" / "espresso.lock").read_text())
    lot = lock["stages"]["ground"]["lot"]
    result = json.loads((WORK / "build/store" / lot[:2] / lot / "out/grounded.json").read_text())
    retrieval = result["retrieval"]
    print(f"espresso demo + knowledge base, built in {time.monotonic() - started:.0f} s")
    print(f"{result['items']} golden questions, {result['mode']} search, top {result['top_k']}")
    print(f"retrieval: {json.dumps(retrieval)}")
    print(f"citation precision (expert + retrieval): {result['citation_precision']}")
    print(f"{'row':20} golden token F1")
    for name, row in result["rows"].items():
        print(f"{name:20} {row['token_f1']:.3f}")


if __name__ == "__main__":
    main()
