"""`opensem feedback add|import|list` on a copy of the demo project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from opensem.cli import cli
from tests.routing.test_registry import REPO, run


def project(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    shutil.copy(REPO / "manifests" / "tiny-demo.yaml", tmp_path / "manifests" / "tiny-demo.yaml")
    return tmp_path / "manifests" / "tiny-demo.yaml"


def test_add_from_flags_and_interactively(tmp_path: Path) -> None:
    manifest = project(tmp_path)
    code, output = run(
        "feedback",
        "add",
        str(manifest),
        "--prompt",
        "Rest beans?",
        "--answer",
        "No.",
        "--edited",
        "Five to ten days.",
        "--tag",
        "fact",
    )
    assert code == 0 and "data/tiny-demo/feedback/feedback.jsonl" in output
    result = CliRunner().invoke(
        cli, ["feedback", "add", str(manifest)], input="Grind finer?\nYes, finer.\n5\n\n"
    )
    assert result.exit_code == 0, result.output
    lines = [
        json.loads(line)
        for line in (tmp_path / "data" / "tiny-demo" / "feedback" / "feedback.jsonl")
        .read_text()
        .splitlines()
    ]
    assert lines[0]["edited"] == "Five to ten days." and lines[0]["tags"] == ["fact"]
    assert (
        lines[1]["prompt"] == "Grind finer?"
        and lines[1]["rating"] == 5
        and "edited" not in lines[1]
    )
    code, output = run("feedback", "list", str(manifest))
    assert code == 0 and "2 records: 1 edits; ratings 5: 1" in output
    code, output = run(
        "feedback", "add", str(manifest), "--prompt", "q", "--answer", "a", "--rating", "9"
    )
    assert code == 2 and "Traceback" not in output


def test_import_checks_every_record_before_appending_any(tmp_path: Path) -> None:
    manifest = project(tmp_path)
    upload = tmp_path / "upload.jsonl"
    upload.write_text(
        '{"prompt": "q1", "answer": "a1", "rating": 4}\n{"prompt": "q2", "answer": "a2"}\n'
    )
    code, output = run("feedback", "import", str(manifest), str(upload))
    assert (
        code == 1
        and "upload.jsonl:2" in output
        and "a rating (1-5), an edited answer, or both" in output
    )
    assert not (tmp_path / "data" / "tiny-demo" / "feedback").exists()
    upload.write_text(
        '{"prompt": "q1", "answer": "a1", "rating": 4}\n{"prompt": "q2", "answer": "a2", "edited": "b2"}\n'
    )
    code, output = run("feedback", "import", str(manifest), str(upload))
    assert code == 0 and "imported 2 records" in output


def test_add_records_the_latest_published_lot(tmp_path: Path) -> None:
    from opensem.core.layout import lock_path
    from opensem.core.lock import write_lock

    manifest = project(tmp_path)
    code, output = run(
        "feedback", "add", str(manifest), "--prompt", "q", "--answer", "a", "--rating", "2"
    )
    assert code == 0 and "no published release of this manifest yet" in output
    write_lock(
        lock_path(manifest),
        {
            "stages": {},
            "published": {
                "tag": "v-abc",
                "lot": "abc123" * 8,
                "uri": "build/registry/x",
                "digest": "d",
            },
        },
    )
    code, output = run(
        "feedback", "add", str(manifest), "--prompt", "q", "--answer", "a", "--rating", "2"
    )
    assert code == 0 and "against release v-abc (lot abc123abc123" in " ".join(output.split())
    code, output = run(
        "feedback",
        "add",
        str(manifest),
        "--prompt",
        "q",
        "--answer",
        "a",
        "--rating",
        "2",
        "--lot",
        "other",
    )
    lots = [
        json.loads(line).get("lot")
        for line in (tmp_path / "data" / "tiny-demo" / "feedback" / "feedback.jsonl")
        .read_text()
        .splitlines()
    ]
    assert lots == [None, "abc123" * 8, "other"]
