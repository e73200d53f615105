"""Deleting parts of an expert: their files go, the build results that hold them leave the lock and
the store, and the rest of the expert stays buildable."""

from __future__ import annotations

import json
from pathlib import Path

from opensem.manifest.new_expert import Document, ExpertAnswers, create_expert
from opensem.project import load_graph
from opensem.ui.removal import delete, doomed
from tests.cli import run_cli


def _built(root: Path) -> Path:
    """An expert built up to its split, with one feedback record."""
    (root / "manifests").mkdir(parents=True)
    text = root / "grinder.txt"
    text.write_text("Brush the burrs of the grinder every week.\n\nDescale the boiler monthly.\n")
    manifest = create_expert(
        root,
        ExpertAnswers(name="coffee", knowledge=False),
        [Document("grinder.txt", text)],
        load_graph,
    )
    feedback = root / "data" / "coffee" / "feedback"
    feedback.mkdir(parents=True)
    (feedback / "feedback.jsonl").write_text(
        json.dumps({"prompt": "q", "answer": "a", "rating": 1}) + "\n"
    )
    code, output = run_cli("build", str(manifest), "--until", "split")
    assert code == 0, output
    return manifest


def _lock_stages(manifest: Path) -> set[str]:
    return set(json.loads(manifest.with_suffix(".lock").read_text())["stages"])


def test_deleting_the_dataset_forgets_its_build_results_and_keeps_the_documents(
    tmp_path: Path,
) -> None:
    manifest = _built(tmp_path)
    assert {"ingest", "synthesize", "split"} <= _lock_stages(manifest)
    store = tmp_path / "build" / "store"
    entries = len(list(store.glob("??/*/meta.json")))

    told = doomed(tmp_path, "coffee", manifest, frozenset({"dataset"}))
    assert {"synthesize", "split"} <= set(told.stages) and "ingest" not in told.stages
    gone, collected, size = delete(tmp_path, "coffee", manifest, frozenset({"dataset"}))
    assert gone.stages == told.stages and collected == len(told.stages) and size > 0
    assert len(list(store.glob("??/*/meta.json"))) == entries - collected
    assert "ingest" in _lock_stages(manifest) and not set(told.stages) & _lock_stages(manifest)
    assert (tmp_path / "data" / "coffee" / "raw" / "grinder.txt").exists()
    assert (tmp_path / "data" / "coffee" / "feedback" / "feedback.jsonl").exists()

    code, output = run_cli("plan", str(manifest), "--json")
    status = {s["name"]: s["status"] for s in json.loads(output)["stages"]}
    assert code == 0 and status["ingest"] == "up-to-date" and status["synthesize"] != "up-to-date"


def test_deleting_documents_and_feedback_names_what_goes_and_nothing_else(tmp_path: Path) -> None:
    manifest = _built(tmp_path)
    told = doomed(tmp_path, "coffee", manifest, frozenset({"documents", "feedback"}))
    paths = [path for path, _, _ in told.paths]
    assert paths == ["data/coffee/raw", "data/coffee/feedback"] and set(told.stages) == {"ingest"}
    delete(tmp_path, "coffee", manifest, frozenset({"documents", "feedback"}))
    assert not (tmp_path / "data" / "coffee" / "raw").exists()
    assert not (tmp_path / "data" / "coffee" / "feedback").exists()
    assert manifest.exists() and (tmp_path / "data" / "coffee" / "golden").exists()
    assert "ingest" not in _lock_stages(manifest) and "split" in _lock_stages(manifest)
    code, output = run_cli("build", str(manifest), "--until", "split")
    assert code != 0 and "Traceback" not in output  # no documents left: said, not crashed
