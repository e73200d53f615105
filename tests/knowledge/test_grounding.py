"""Retrieval recall and MRR, citation precision, and the gates that need a knowledge base."""

from __future__ import annotations

from pathlib import Path

from opensem.evaluation.items import Item
from opensem.knowledge.documents import Chunk
from opensem.knowledge.grounding import citation_precision, contains, retrieval_scores
from opensem.knowledge.index import Hit
from tests.e2e.test_shared_cache import clone


def _item(source: str | None, page: int | None = None, reference: str = "grind finer") -> Item:
    return Item("q", "golden", ({"role": "user", "content": "q?"},), reference, (), source, page)


def _hits(*where: tuple[str, int | None, str]) -> list[Hit]:
    return [
        Hit(Chunk(f"c{n}", source, page, 0, len(text), None, text), 0.5, n)
        for n, (source, page, text) in enumerate(where, 1)
    ]


def test_recall_and_mrr_count_only_questions_that_name_their_document() -> None:
    items = [_item("sour.txt"), _item("docs/manual.pdf", page=2), _item("milk.md"), _item(None)]
    hits = [
        _hits(("data/x/bitter.txt", None, ""), ("data/x/sour.txt", None, "")),  # rank 2
        _hits(("docs/manual.pdf", 1, ""), ("docs/manual.pdf", 2, "")),  # the page matters: rank 2
        _hits(("data/x/bitter.txt", None, "")),  # missed
        _hits(("anything.md", None, "")),
    ]
    scores = retrieval_scores(items, hits)
    assert scores == {"named": 3, "recall_at_k": round(2 / 3, 6), "mrr": round((0.5 + 0.5) / 3, 6)}


def test_a_cited_chunk_counts_when_it_holds_the_answer() -> None:
    assert contains("If the shot is sour, grind finer and retry.", "Grind finer.")
    assert not contains("Use fresh beans.", "Grind finer.")
    hits = _hits(("a.md", None, "Grind finer when sour."), ("b.md", None, "Milk at sixty degrees."))
    assert citation_precision(["Grind finer [1]."], [hits], [_item("a.md")]) == 1.0
    assert citation_precision(["No citation here."], [hits], [_item("a.md")]) == 0.5  # both listed


def test_a_gate_on_the_knowledge_base_needs_one(tmp_path: Path) -> None:
    project = clone(tmp_path / "p")
    project.manifest.write_text(
        project.manifest.read_text()
        + "evaluation:\n  gates:\n    - {metric: knowledge.mrr, min: 0.5}\n"
    )
    code, output = project.run("validate", str(project.manifest))
    assert (
        code == 2 and "knowledge.mrr cannot be measured" in output and "knowledge section" in output
    ), output
