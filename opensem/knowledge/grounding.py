"""How well the knowledge base serves the golden set: retrieval, answers with and without it,
and whether the sources an answer cites hold the answer.

- recall@k: of the golden questions that name their document (and page), the share whose top k
  chunks include one from it; MRR: the mean of 1 / the rank of the first such chunk (0 if none).
- answer quality (token F1 against the golden answer) for base, base + retrieval, expert, and
  expert + retrieval: what fine-tuning and retrieval each add.
- citation precision: of the chunks the expert's answers cite (all given sources when an answer
  cites none by number), the share that contain the golden answer: at least half of its
  normalized words appear in the chunk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from opensem.evaluation.items import Item
from opensem.evaluation.metrics import DIGITS, normalize_answer
from opensem.knowledge.answers import cited
from opensem.knowledge.index import Hit

CONTAINS = 0.5  # share of the reference's words a chunk must hold to "contain" the answer
ROWS = ("base", "base + retrieval", "expert", "expert + retrieval")


def from_document(hit: Hit, item: Item) -> bool:
    """Whether a hit is from the document (and page) the item names; a path may be given in
    part (its file name, or a tail of its path)."""
    source = item.source or ""
    same = hit.chunk.source == source or hit.chunk.source.endswith("/" + source.lstrip("/"))
    return same and (item.page is None or hit.chunk.page == item.page)


def retrieval_scores(items: Sequence[Item], hits: Sequence[Sequence[Hit]]) -> dict[str, Any]:
    """recall@k and MRR over the items that name their document."""
    named = [(item, found) for item, found in zip(items, hits, strict=True) if item.source]
    if not named:
        return {"named": 0, "recall_at_k": None, "mrr": None}
    ranks = [next((h.rank for h in found if from_document(h, item)), None) for item, found in named]
    return {
        "named": len(named),
        "recall_at_k": round(sum(r is not None for r in ranks) / len(named), DIGITS),
        "mrr": round(sum(1 / r for r in ranks if r is not None) / len(named), DIGITS),
    }


def contains(text: str, reference: str) -> bool:
    """Whether text holds the reference answer: at least CONTAINS of its normalized words."""
    wanted = Counter(normalize_answer(reference).split())
    if not wanted:
        return False
    held = sum((wanted & Counter(normalize_answer(text).split())).values())
    return held / sum(wanted.values()) >= CONTAINS


def citation_precision(
    answers: Sequence[str], hits: Sequence[Sequence[Hit]], items: Sequence[Item]
) -> float | None:
    """Of the chunks the answers cite, the share that contain their item's reference answer."""
    checks = [
        contains(hit.chunk.text, item.reference or "")
        for answer, found, item in zip(answers, hits, items, strict=True)
        for hit in cited(answer, list(found))
    ]
    return round(sum(checks) / len(checks), DIGITS) if checks else None


def grounded_markdown(result: dict[str, Any]) -> str:
    """The four rows and the retrieval figures as Markdown."""
    r = result["retrieval"]
    judged = any(row.get("judge_score") is not None for row in result["rows"].values())
    head = "| model | golden token F1 |" + (" faithfulness (judge, 1-5) |" if judged else "")
    lines = [
        f"## Knowledge base ({result['items']} golden questions, top {result['top_k']}, "
        f"{result['mode']} search)",
        "",
        head,
        "| --- | --- |" + (" --- |" if judged else ""),
    ]
    for name in ROWS:
        row = result["rows"][name]
        judge = row.get("judge_score")
        extra = (f" {judge:.2f} |" if judge is not None else " - |") if judged else ""
        lines.append(f"| {name} | {row['token_f1']:.3f} |{extra}")
    recall = "-" if r["recall_at_k"] is None else f"{r['recall_at_k']:.3f}"
    mrr = "-" if r["mrr"] is None else f"{r['mrr']:.3f}"
    precision = result["citation_precision"]
    lines += [
        "",
        f"- retrieval recall@{result['top_k']}: {recall}, MRR: {mrr} "
        f"({r['named']} questions name their document)",
        f"- citation precision: {'-' if precision is None else f'{precision:.3f}'} "
        f"(cited chunks holding at least {CONTAINS:.0%} of the golden answer's words)",
        "",
    ]
    return "\n".join(lines)
