"""The curation section in the manifest and in the stage graph: which stages, where their data flows."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.core.graph import SourceInput, UpstreamInput
from opensem.errors import ManifestError
from opensem.manifest.loader import load_manifest
from opensem.stages.wiring import build_graph


def project(tmp_path: Path, curation: str, golden: bool = True) -> Path:
    (tmp_path / "data" / "cur" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "cur" / "raw" / "a.md").write_text("Tamp evenly.\n")
    if golden:
        (tmp_path / "data" / "cur" / "golden").mkdir()
        (tmp_path / "data" / "cur" / "golden" / "g.jsonl").write_text(
            '{"question": "Tamp?", "answer": "Evenly."}\n'
        )
    manifest = tmp_path / "manifests" / "cur.yaml"
    manifest.parent.mkdir()
    manifest.write_text(f"job_id: cur\nbase_model: org/model\n{curation}", encoding="utf-8")
    return manifest


def test_without_curation_neither_stage_exists(tmp_path: Path) -> None:
    graph = build_graph(load_manifest(project(tmp_path, "")))
    assert "dedup" not in graph.names and "decontaminate" not in graph.names
    assert graph.node("tokenize").inputs["train"] == UpstreamInput(stage="split")


def test_both_stages_sit_in_the_data_flow(tmp_path: Path) -> None:
    manifest = project(
        tmp_path, "curation:\n  dedup: {threshold: 0.9, batch_size: 16}\n  decontaminate: {}\n"
    )
    graph = build_graph(load_manifest(manifest))
    names = graph.names
    assert (
        names.index("ingest")
        < names.index("dedup")
        < names.index("split")
        < names.index("decontaminate")
        < names.index("train")
    )
    dedup = graph.node("dedup")
    assert dedup.inputs == {"records": UpstreamInput(stage="ingest")}
    assert dedup.params == {
        "model": "all-MiniLM-L6-v2",
        "threshold": 0.9,
        "field": "instruction",
        "exact": True,
        "semantic": True,
    }
    assert dedup.settings == {"batch_size": 16}  # how to run, never part of the lot
    assert graph.node("split").inputs["records"] == UpstreamInput(stage="dedup")
    decon = graph.node("decontaminate")
    assert decon.inputs == {
        "split": UpstreamInput(stage="split"),
        "golden": SourceInput(path="data/cur/golden"),
    }
    assert decon.params == {
        "ngram": 13,
        "against_test": True,
        "against_golden": True,
        "embedding_threshold": None,
        "mode": "drop",
    }  # the model is unused without the paraphrase check, so it stays out of the lot
    assert decon.settings == {"model": "all-MiniLM-L6-v2", "batch_size": 64}
    assert graph.node("tokenize").inputs["train"] == UpstreamInput(stage="decontaminate")
    assert graph.node("evaluate").inputs["test"] == UpstreamInput(stage="split")


def test_a_local_embedding_model_is_an_input(tmp_path: Path) -> None:
    manifest = project(
        tmp_path,
        "curation:\n  dedup: {model: ./models/emb}\n  decontaminate: {embedding_threshold: 0.9, model: ./models/emb}\n",
    )
    (tmp_path / "models" / "emb").mkdir(parents=True)
    graph = build_graph(load_manifest(manifest))
    assert graph.node("dedup").inputs["model"] == SourceInput(path="models/emb")
    assert graph.node("decontaminate").inputs["model"] == SourceInput(path="models/emb")
    (tmp_path / "models" / "emb").rmdir()
    with pytest.raises(ManifestError) as caught:
        build_graph(load_manifest(manifest))
    assert {p.location.key for p in caught.value.problems} == {
        "curation.dedup.model",
        "curation.decontaminate.model",
    }


def test_exact_only_keeps_the_model_out_of_the_lot(tmp_path: Path) -> None:
    graph = build_graph(
        load_manifest(
            project(tmp_path, "curation:\n  dedup: {semantic: false, model: ./nowhere}\n")
        )
    )
    dedup = graph.node("dedup")
    assert (
        "model" not in dedup.params
        and "model" not in dedup.inputs
        and dedup.settings["model"] == "./nowhere"
    )


def test_golden_set_missing(tmp_path: Path) -> None:
    quiet = build_graph(
        load_manifest(project(tmp_path / "a", "curation:\n  decontaminate: {}\n", golden=False))
    )
    assert (
        quiet.node("decontaminate").params["against_golden"] is False
        and "golden" not in quiet.node("decontaminate").inputs
    )
    with pytest.raises(
        ManifestError, match="against_golden is true but there is no golden set"
    ) as caught:
        build_graph(
            load_manifest(
                project(
                    tmp_path / "b",
                    "curation:\n  decontaminate: {against_golden: true}\n",
                    golden=False,
                )
            )
        )
    assert caught.value.problems[0].location.line == 4
    with pytest.raises(ManifestError, match="nothing to check against"):
        build_graph(
            load_manifest(
                project(
                    tmp_path / "c",
                    "curation:\n  decontaminate: {against_test: false}\n",
                    golden=False,
                )
            )
        )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("dedup: {exact: false, semantic: false}", "dedup needs exact or semantic"),
        ("dedup: {threshold: 1.5}", "less than 1"),
        ("dedup: {field: answer}", "instruction"),
        (
            "decontaminate: {against_test: false, against_golden: false}",
            "needs against_test or against_golden",
        ),
        ("decontaminate: {mode: delete}", "drop"),
        ("decontaminate: {ngram: 0}", "greater than or equal to 1"),
        ("dedupe: {}", "dedupe"),
    ],
)
def test_invalid_sections_are_named(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(project(tmp_path, f"curation:\n  {section}\n"))
    rendered = caught.value.render()
    assert message in rendered and "curation." in rendered
