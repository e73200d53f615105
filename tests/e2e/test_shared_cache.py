"""The shared stage cache through the real CLI: a second clone builds nothing, push and pull --cache
move whole builds, a read-only cache refuses a push, and gc removes what no lock refers to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Project
from tests.e2e.test_concurrent_builds import MANIFEST


def clone(root: Path) -> Project:
    (root / "manifests").mkdir(parents=True)
    (root / "manifests" / "twice.yaml").write_text(MANIFEST)
    (root / "data" / "twice").mkdir(parents=True)
    shutil.copy(
        REPO / "data" / "tiny-demo" / "instructions.jsonl",
        root / "data" / "twice" / "instructions.jsonl",
    )
    return Project(root, "twice")


def test_clones_share_builds_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSEM_CACHE", str(tmp_path / "shared"))
    monkeypatch.setenv("OPENSEM_CACHE_MODE", "read-write")
    first = clone(tmp_path / "a")
    ran, output = first.build("--until", "tokenize")
    assert ran == ["base_model", "ingest", "split", "tokenize"], output

    monkeypatch.setenv("OPENSEM_CACHE_MODE", "read")
    second = clone(tmp_path / "b")
    code, output = second.run("plan", str(second.manifest), "--json")
    planned = {stage["name"]: stage for stage in json.loads(output)["stages"]}
    assert code == 0 and planned["base_model"]["in_cache"] and planned["ingest"]["in_cache"], (
        output
    )  # later lots wait for their upstream
    code, output = second.run("plan", str(second.manifest))
    assert code == 0 and "in cache" in output
    ran, output = second.build("--until", "tokenize")
    assert ran == [] and "Nothing to do: all 4 stages up to date (4 from the cache)" in output, (
        output
    )
    assert second.lock.read_text() == first.lock.read_text()

    third = clone(tmp_path / "c")
    code, output = third.run("pull", str(third.manifest), "--cache")
    assert code == 2 and "records no stages" in output  # nothing to name the lots by
    shutil.copy(first.lock, third.lock)  # the lock is committed: a checkout has it
    code, output = third.run("pull", str(third.manifest), "--cache")
    assert code == 0 and "4 of 4 stages in the local store" in output, output
    code, output = third.run("push", str(third.manifest))
    assert code == 2 and "is read-only here" in output


def test_push_fills_a_cache_and_gc_keeps_only_what_a_lock_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = clone(tmp_path / "a")
    project.build("--until", "tokenize")  # no cache configured
    code, output = project.run("push", str(project.manifest))
    assert code == 2 and "no shared stage cache is configured" in output

    monkeypatch.setenv("OPENSEM_CACHE", str(tmp_path / "shared"))
    monkeypatch.setenv("OPENSEM_CACHE_MODE", "read-write")
    code, output = project.run("push", str(project.manifest))
    assert code == 0 and "pushed 4 stage(s)" in output and "0 already there" in output, output

    project.manifest.write_text(
        MANIFEST + "seed: 7\n"
    )  # another split: split and tokenize get new lots
    project.build("--until", "tokenize")
    code, output = project.run("gc", "--root", str(project.root), "--dry-run")
    assert code == 0 and "would remove 2 entries" in output and "kept 4" in output, output
    code, output = project.run("gc", "--root", str(project.root))
    assert code == 0 and "removed 2 entries" in output
    ran, output = project.build("--until", "tokenize")
    assert ran == [], output


def test_a_clone_that_takes_every_stage_from_the_cache_still_publishes_its_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSEM_CACHE", str(tmp_path / "shared"))
    monkeypatch.setenv("OPENSEM_CACHE_MODE", "read-write")
    publishing = (
        "training: {max_steps: 2}\nevaluation: {max_new_tokens: 4}\npublish_target: {registry: "
        "build/registry, tag: 'v-{lot}'}\n"
    )
    first = clone(tmp_path / "a")
    first.manifest.write_text(first.manifest.read_text() + publishing)
    ran, output = first.build()
    assert "publish" in ran, output
    monkeypatch.setenv("OPENSEM_CACHE_MODE", "read")
    second = clone(tmp_path / "b")
    second.manifest.write_text(first.manifest.read_text())
    ran, output = second.build()
    assert ran == ["publish"], (
        output
    )  # everything else from the cache; the release is made here, in this clone's registry
    code, output = second.run("verify", str(second.manifest))
    assert code == 0, output
    assert (second.root / second.lock_data()["published"]["uri"] / "files.json").is_file()


def test_build_json_is_one_event_per_line(tmp_path: Path) -> None:
    from opensem.core.events import EVENTS

    project = clone(tmp_path / "j")
    code, output = project.run("build", str(project.manifest), "--until", "split", "--json")
    assert code == 0, output
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if e["event"] in ("planned", "finished")] == [
        "planned",
        "finished",
    ]
    assert [e["stage"] for e in events if e["event"] == "built"] == ["ingest", "split"]
    assert all(e["event"] in EVENTS and e["job"] == "twice" for e in events)
    assert "Built 2 stage(s)" in events[-1]["detail"] and all(
        line.startswith("{") for line in output.splitlines() if line.strip()
    )
