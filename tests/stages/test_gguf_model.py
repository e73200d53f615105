"""The gguf_model stage: a GGUF base (project file or pinned package) through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import copy_demo
from tests.training.gguf_files import tiny_gguf, wheel_with


@pytest.fixture(scope="module")
def gguf_file(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf"))


def plan(project, *extra: str) -> dict:
    code, output = project.run("plan", str(project.manifest), "--json", *extra)
    assert code == 0, output
    return {stage["name"]: stage for stage in json.loads(output)["stages"]}


def test_a_gguf_file_of_the_project_is_the_base_and_its_bytes_key_the_lot(
    gguf_file: Path, tmp_path: Path
) -> None:
    project = copy_demo(tmp_path)
    (project.root / "models").mkdir()
    shutil.copy(gguf_file, project.root / "models" / "tiny.gguf")
    project.set_section("base_model", "base_model: ./models/tiny.gguf\n")
    project.set_section("pretrain", "")
    stages = plan(project)
    assert list(stages)[0] == "base_model" and "tokenize" in stages
    ran, output = project.build("--until", "base_model")
    assert ran == ["base_model"], output
    assert "LlamaForCausalLM" in output and "dequantized from ALL_F32" in output
    lot = stages["base_model"]["lot"]
    entry = project.root / "build" / "store" / lot[:2] / lot / "out"
    assert (entry / "model" / "model.safetensors").is_file()
    assert json.loads((entry / "gguf.json").read_text())["path"] == "tiny.gguf"
    with (project.root / "models" / "tiny.gguf").open("ab") as handle:
        handle.write(b"\0")
    assert plan(project)["base_model"]["lot"] != lot


def test_a_pinned_package_is_fetched_and_recorded(
    gguf_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    wheel = wheel_with("tinygguf/tiny.gguf", gguf_file, index)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    project = copy_demo(tmp_path / "project")
    from opensem.training.gguf import file_sha256

    digest = file_sha256(wheel)
    project.set_section(
        "base_model",
        f"base_model:\n  gguf:\n    package: tinygguf==0.1.0\n    file: tinygguf/tiny.gguf\n    sha256: {digest}\n",
    )
    project.set_section("pretrain", "")
    ran, output = project.build("--until", "base_model")
    assert ran == ["base_model"], output
    lot = plan(project)["base_model"]["lot"]
    recorded = json.loads(
        (project.root / "build" / "store" / lot[:2] / lot / "out" / "gguf.json").read_text()
    )
    assert recorded["package"] == "tinygguf==0.1.0" and recorded["wheel_sha256"] == digest


def test_invalid_gguf_sources_are_reported_at_their_key(tmp_path: Path) -> None:
    project = copy_demo(tmp_path)
    project.set_section("base_model", "base_model:\n  gguf:\n    package: tinygguf\n")
    code, output = project.run("validate", str(project.manifest))
    assert code == 2 and "base_model.gguf" in output, output
    project.set_section("base_model", "base_model: ./models/missing.gguf\n")
    code, output = project.run("validate", str(project.manifest))
    assert code == 2 and "'./models/missing.gguf' does not exist" in output, output
