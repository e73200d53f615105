"""Finding training records that leak test or golden items: n-gram overlap, and optionally paraphrase.

A training record is contaminated when its full text (every turn) contains an n-gram of a
reference's full text (question and answer), or, with an embedding threshold, when its
instruction is closer than the threshold to a reference's question: a paraphrase shares no
13 words with the original but means the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opensem.core.stage import StageContext
from opensem.curate.embed import EmbedStats, embed_texts
from opensem.curate.ngrams import NgramIndex, Overlap, Reference
from opensem.curate.text import full_text, instruction_of

BLOCK = 4096


@dataclass
class Findings:
    overlaps: list[Overlap | None]  # per training record
    similarity: list[tuple[float, int]] = field(
        default_factory=list
    )  # per training record: (cosine, reference), when embedding
    stats: EmbedStats | None = None
    model_digest: str | None = None
    unchecked: int = 0  # references too short for the n-gram check


def golden_references(root: Path) -> list[Reference]:
    """Golden items as references: question and answer are the text, the question is what paraphrases match."""
    from opensem.evaluation.items import load_golden

    return [
        Reference("golden", item.id, f"{item.question}\n{item.reference or ''}", item.question)
        for item in load_golden(root)
    ]


def test_references(records: list[dict[str, Any]]) -> list[Reference]:
    """The test split's records as references to check training records against."""
    return [Reference("test", str(r["id"]), full_text(r), instruction_of(r)) for r in records]


def nearest_reference(train: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each training vector, the highest cosine similarity to a reference vector and its index."""
    best = np.full(len(train), -1.0, dtype=np.float32)
    which = np.full(len(train), -1, dtype=np.int64)
    if not len(refs):
        return best, which
    for start in range(0, len(train), BLOCK):
        sims = train[start : start + BLOCK] @ refs.T
        which[start : start + BLOCK] = sims.argmax(axis=1)
        best[start : start + BLOCK] = sims[np.arange(len(sims)), which[start : start + BLOCK]]
    return best, which


def find(
    train: list[dict[str, Any]],
    references: list[Reference],
    n: int,
    embedding: tuple[str, Path | None, int] | None,
    ctx: StageContext,
) -> Findings:
    """N-gram overlaps of every training record, and with embedding=(model, local dir, batch size) its
    nearest reference."""
    index = NgramIndex(references, n)
    findings = Findings(
        overlaps=index.overlaps([full_text(record) for record in train]), unchecked=index.unchecked
    )
    if embedding is None or not train or not references:
        return findings
    from opensem.curate.dedup import open_embedder

    model, local_dir, batch_size = embedding
    embedder, cache = open_embedder(model, local_dir, batch_size, ctx)
    findings.model_digest = embedder.ref.digest
    with cache:
        texts = [instruction_of(record) for record in train] + [r.question for r in references]
        vectors, findings.stats = embed_texts(
            texts, embedder, cache, ctx.progress, "embedding for decontamination"
        )
    best, which = nearest_reference(vectors[: len(train)], vectors[len(train) :])
    findings.similarity = [(float(s), int(w)) for s, w in zip(best, which)]
    return findings
