"""The synthesis and data.chunking manifest sections, and how they wire into the stage graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.errors import ManifestError
from opensem.manifest import load_manifest
from opensem.stages.wiring import build_graph


def write(root: Path, body: str) -> Path:
    (root / "data" / "x" / "raw").mkdir(parents=True, exist_ok=True)
    (root / "data" / "x" / "raw" / "a.md").write_text("Some text about espresso.")
    path = root / "manifests" / "x.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("job_id: x\nbase_model: org/model\n" + body)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        build_graph(load_manifest(path))
    return [p.render() for p in info.value.problems]


def test_synthesize_sits_between_ingest_and_split(tmp_path: Path) -> None:
    graph = build_graph(
        load_manifest(
            write(
                tmp_path,
                "synthesis:\n  provider: offline\n  mode: refusals\ndata:\n  chunking: {size: 800, overlap: 100}\n",
            )
        )
    )
    assert graph.names[:3] == ["ingest", "synthesize", "split"]
    assert graph.node("synthesize").upstream() == ["ingest"] and graph.node("split").upstream() == [
        "synthesize"
    ]
    assert graph.node("synthesize").params["synthesis"]["mode"] == "refusals"
    assert graph.node("ingest").params["chunking"] == {"size": 800, "overlap": 100}
    plain = build_graph(load_manifest(write(tmp_path, "")))
    assert "synthesize" not in plain.names and plain.node("split").upstream() == ["ingest"]


def test_the_key_variable_is_named_never_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-do-not-store")
    body = (
        "synthesis:\n  provider: openai\n  model: m\n  base_url: http://127.0.0.1:9/v1\n  "
        "api_key_env: MY_TEACHER_KEY\n"
    )
    graph = build_graph(load_manifest(write(tmp_path, body)))
    node = graph.node("synthesize")
    assert node.settings["synthesis"][
        "api_key_env"
    ] == "MY_TEACHER_KEY" and "api_key_env" not in str(node.params)  # a run setting, not in the lot
    assert "sk-do-not-store" not in str(graph.model_dump())
    found = problems(
        write(tmp_path, "synthesis:\n  provider: openai\n  model: m\n  api_key: sk-123\n")
    )
    assert (
        len(found) == 1
        and "x.yaml:3: synthesis: an API key never goes in the manifest" in found[0]
        and "never goes in the manifest" in found[0]
    )


def test_invalid_synthesis_settings_are_all_reported(tmp_path: Path) -> None:
    body = (
        "synthesis:\n  provider: openai\n  mode: instructions\n  rejected_model: small\n  temperature: 3\n  "
        "api_key_env: 'has space'\n"
        "data:\n  chunking:\n    size: 500\n    overlap: 300\n"
    )
    found = "\n".join(problems(write(tmp_path, body)))
    assert "synthesis.temperature" in found and "synthesis.api_key_env" in found
    assert "overlap (300) must be less than half of size (500)" in found
    found = "\n".join(
        problems(write(tmp_path, "synthesis:\n  provider: openai\n  rejected_model: small\n"))
    )
    assert "synthesis.model: required key is missing" in found
    found = "\n".join(
        problems(
            write(
                tmp_path, "synthesis:\n  rejected_model: small\n  base_url: http://localhost:8000\n"
            )
        )
    )
    assert (
        "synthesis.base_url: unknown key" in found
        and "base_url is an option of provider openai" in found
    )
    found = "\n".join(problems(write(tmp_path, "synthesis:\n  rejected_model: small\n")))
    assert "rejected_model applies to mode preferences only (mode is instructions)" in found
    found = "\n".join(
        problems(
            write(
                tmp_path,
                "synthesis:\n  provider: openai\n  model: m\n  base_url: https://me:pw@host/v1\n",
            )
        )
    )
    assert "base_url must not carry credentials" in found


def test_globs_and_urls_pass_validation_without_touching_the_network(tmp_path: Path) -> None:
    body = "data:\n  sources:\n    - path: data/x/raw/*.md\n    - path: s3://some-bucket/docs/\n"
    loaded = load_manifest(write(tmp_path, body))
    assert [s.path for s in loaded.sources()] == ["data/x/raw/*.md", "s3://some-bucket/docs/"]
    found = problems(write(tmp_path, "data:\n  sources:\n    - path: ../outside/*.md\n"))
    assert "points outside the project" in found[0]
