"""The knowledge base through the real CLI: index, publish, ask with sources, record, rate, and
the clear errors (empty question, no index, another embedder, a scanned PDF)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.e2e.conftest import REPO, Project
from tests.e2e.test_shared_cache import clone
from tests.pdf import write_pdf

KNOWLEDGE = """training: {max_steps: 2}
publish_target: {registry: registry, tag: v1}
knowledge:
  sources: [data/twice/docs]
  chunking: {size: 400, overlap: 50}
evaluation:
  max_new_tokens: 8
  gates:
    - {metric: knowledge.recall_at_k, min: 0.5}
"""
GOLDEN = [
    {
        "question": "My espresso is sour. Which way should I adjust the grinder?",
        "answer": "Finer.",
        "source": "09-sour-shots.txt",
    },
    {
        "question": "How hot should steamed milk get?",
        "answer": "About 60 degrees Celsius.",
        "source": "07-milk-steaming.md",
    },
    {
        "question": "How often should I backflush the machine?",
        "answer": "Daily with water.",
        "source": "08-cleaning.md",
    },
]


def knowledge_project(root: Path) -> Project:
    project = clone(root)
    shutil.copytree(REPO / "data" / "tiny-demo" / "docs", root / "data" / "twice" / "docs")
    project.manifest.write_text(project.manifest.read_text() + KNOWLEDGE)
    (root / "data" / "twice" / "golden").mkdir(parents=True)
    (root / "data" / "twice" / "golden" / "golden.jsonl").write_text(
        "".join(json.dumps(g) + "\n" for g in GOLDEN)
    )
    return project


def test_ask_answers_with_sources_records_and_rates(tmp_path: Path) -> None:
    project = knowledge_project(tmp_path / "p")
    ran, output = project.build()
    assert {"index", "ground", "gate", "publish"} <= set(ran), output
    assert "expert + retrieval" in output and "retrieval recall@4: 1.000" in output, output
    release = project.root / "registry" / "twice" / "v1"
    assert (release / "knowledge" / "chunks.sqlite").is_file() and (
        release / "knowledge" / "vectors.faiss"
    ).is_file()
    grounded = json.loads((release / "grounded.json").read_text())
    assert grounded["retrieval"]["named"] == 3 and grounded["retrieval"]["recall_at_k"] == 1.0, (
        grounded["retrieval"]
    )
    assert set(grounded["rows"]) == {"base", "base + retrieval", "expert", "expert + retrieval"}
    gates = json.loads((release / "gates.json").read_text())["gates"]
    assert gates[0]["metric"] == "knowledge.recall_at_k" and gates[0]["passed"], gates

    code, output = project.run(
        "ask",
        str(project.manifest),
        "my espresso tastes sour, what now?",
        "--search-only",
        "--json",
    )
    hits = json.loads(output)
    assert code == 0 and len(hits) == 4, output
    assert "sour" in hits[0]["source"] and hits[0]["score"] > 0.3, hits[0]

    code, output = project.run(
        "ask",
        str(project.manifest),
        "How long should milk be steamed?",
        "--json",
        "--max-tokens",
        "8",
    )
    answer = json.loads(output)
    assert code == 0 and answer["answer"].split("\n\n")[-1].startswith(
        "Sources: [1] data/twice/docs/"
    ), output
    assert len(answer["sources"]) == 4 and answer["lot"] and answer["index_lot"], answer
    code, output = project.run("answers", "list", str(project.manifest), "--json")
    assert code == 0 and json.loads(output)["id"] == answer["id"], output
    code, output = project.run(
        "answers", "feedback", str(project.manifest), answer["id"][:6], "--rating", "2"
    )
    assert code == 0, output
    feedback = (project.root / "data" / "twice" / "feedback" / "feedback.jsonl").read_text()
    assert json.loads(feedback)["rating"] == 2 and json.loads(feedback)["lot"] == answer["lot"]

    code, output = project.run("ask", str(project.manifest), "   ")
    assert code == 2 and "question is empty" in output, output
    code, output = project.run("ask", str(project.manifest), "milk?", "--embedder", "other-model")
    assert code == 2 and "embedded with all-MiniLM-L6-v2, not other-model" in output, output
    assert "Traceback" not in output


def test_one_edited_document_reembeds_only_its_chunks(tmp_path: Path) -> None:
    project = knowledge_project(tmp_path / "p")
    project.run("build", str(project.manifest), "--until", "index")
    doc = project.root / "data" / "twice" / "docs" / "07-milk-steaming.md"
    doc.write_text(doc.read_text() + "\n\nOat milk foams best just below sixty degrees.\n")
    ran, output = project.build("--until", "index", "--json")
    built = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"built"' in line
    ]
    detail = next(e["detail"] for e in built if e["stage"] == "index")
    embedded = int(detail.split("; ")[1].split()[0])
    assert 1 <= embedded <= 3, detail  # the edited document's changed chunks, nothing else


def test_a_scanned_pdf_is_named_and_nothing_built_is_lost(tmp_path: Path) -> None:
    project = knowledge_project(tmp_path / "p")
    write_pdf(project.root / "data" / "twice" / "docs" / "scan.pdf", [[], []])
    code, output = project.run("build", str(project.manifest))
    assert code != 0 and "data/twice/docs/scan.pdf" in output and "OCR" in output, output
    assert "Traceback" not in output
    code, output = project.run("plan", str(project.manifest), "--json")
    planned = {s["name"]: s["status"] for s in json.loads(output)["stages"]}
    assert planned["ingest"] == "up-to-date", planned


def test_asking_a_release_without_a_knowledge_base_says_so(tmp_path: Path) -> None:
    project = clone(tmp_path / "p")
    project.manifest.write_text(
        project.manifest.read_text()
        + "training: {max_steps: 2}\npublish_target: {registry: registry, tag: v1}\n"
    )
    project.build()
    code, output = project.run("ask", str(project.manifest), "anything?")
    assert code == 2 and "has no knowledge base" in output and "knowledge:" in output, output
