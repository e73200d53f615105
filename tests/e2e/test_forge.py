"""The Data Forge end to end through the real CLI: incremental teacher calls, resume after a kill,
no leaked key, and every mode's records accepted by training."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, Project
from tests.servers.openai_compatible import OpenAICompatibleServer, Status

KEY = "sk-forge-e2e-7f3a9c-not-a-real-key"
ENV = "FORGE_E2E_KEY"


def teacher_answer(body: dict[str, Any]) -> str:
    digest = hashlib.sha256(body["messages"][-1]["content"].encode()).hexdigest()[:8]
    return json.dumps(
        {
            "pairs": [
                {
                    "question": f"What does note {digest} say?",
                    "answer": f"Note {digest} says to grind finer.",
                }
            ]
        }
    )


def body_key(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()


def write_docs(root: Path, count: int) -> None:
    docs = root / "data" / "forge" / "raw"
    docs.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        paragraphs = [f"# Note {i}"] + [
            f"Paragraph {p} of note {i}: tamp evenly and weigh the dose. " * 4
            for p in range(3 if i == 17 else 1)
        ]
        (docs / f"note-{i:02d}.md").write_text("\n\n".join(paragraphs), encoding="utf-8")


def write_manifest(
    root: Path, server_url: str, extra: str = "", base_model: str = "org/model"
) -> Path:
    path = root / "manifests" / "forge.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""job_id: forge
base_model: {base_model}
data:
  chunking:
    size: 400
synthesis:
  provider: openai
  model: teacher-1
  base_url: {server_url}
  api_key_env: {ENV}
  concurrency: 4
  pairs_per_chunk: 1
{extra}""",
        encoding="utf-8",
    )
    return path


def chunks_of(project: Project, manifest: Path, source: str) -> set[str]:
    lot = json.loads(manifest.with_suffix(".lock").read_text())["stages"]["ingest"]["lot"]
    records = (
        (project.root / "build" / "store" / lot[:2] / lot / "out" / "records.jsonl")
        .read_text()
        .splitlines()
    )
    return {r["id"] for r in map(json.loads, records) if r["source"] == source}


@pytest.fixture
def forge(
    tmp_path: Path, openai_server: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[Project, Path]:
    monkeypatch.setenv(ENV, KEY)
    openai_server.answer = teacher_answer
    write_docs(tmp_path, 50)
    return Project(tmp_path), write_manifest(tmp_path, openai_server.url)


def test_editing_one_of_50_documents_asks_only_for_its_changed_chunks(
    forge: tuple[Project, Path], openai_server: OpenAICompatibleServer
) -> None:
    project, manifest = forge
    code, output = project.run("build", str(manifest), "--until", "synthesize")
    assert code == 0, output
    assert openai_server.count == 52  # 49 one-chunk notes and note 17 in three chunks
    before = chunks_of(project, manifest, "data/forge/raw/note-17.md")
    project.edit(
        "data/forge/raw/note-17.md",
        "Paragraph 2 of note 17: tamp evenly",
        "Paragraph 2 of note 17: level the bed",
    )
    code, output = project.run("build", str(manifest), "--until", "synthesize")
    assert code == 0, output
    changed = chunks_of(project, manifest, "data/forge/raw/note-17.md") - before
    assert len(changed) == 1 and openai_server.count == 52 + len(changed)
    assert "1 requests sent, 51 answers from the cache" in output


def test_a_build_killed_mid_synthesis_never_sends_a_request_twice(
    forge: tuple[Project, Path], openai_server: OpenAICompatibleServer
) -> None:
    project, manifest = forge
    openai_server.script(*["ok"] * 20)
    openai_server.default = "hang"  # after 20 answers the teacher stalls, and the build is killed
    env = {**os.environ, ENV: KEY, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-m", "opensem.cli", "build", str(manifest), "--until", "synthesize"],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cache = project.root / "build" / "cache" / "teacher"
    deadline = time.time() + 60
    while time.time() < deadline and not (
        len(openai_server.answered) >= 20 and len(list(cache.glob("*/*.json"))) >= 20
    ):
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    first = {body_key(b) for b in openai_server.answered}
    assert len(first) == 20 and len(list(cache.glob("*/*.json"))) == 20
    openai_server.reset()
    code, output = project.run("build", str(manifest), "--until", "synthesize")
    assert code == 0, output
    again = [body_key(b) for b in openai_server.received]
    assert not first & set(again) and len(again) == len(set(again)) == 52 - 20
    assert "32 requests sent, 20 answers from the cache" in output


def scan(root: Path, text: str) -> list[str]:
    """Files under root (binary included) that contain text."""
    needle = text.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.slow
def test_the_api_key_never_appears_in_build_lock_logs_or_registry(
    tmp_path: Path, openai_server: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, KEY)
    openai_server.answer = teacher_answer
    write_docs(tmp_path, 6)
    extra = (
        "training:\n  max_steps: 2\n  max_seq_length: 64\nevaluation:\n  batch_size: "
        "4\npublish_target:\n  registry: registry\n  tag: t-{lot}\n"
    )
    manifest = write_manifest(tmp_path, openai_server.url, extra, base_model="\n  tiny: {}")
    project = Project(tmp_path)
    code, output = project.run("-v", "build", str(manifest))
    assert code == 0, output
    assert set(openai_server.authorization) == {f"Bearer {KEY}"}  # the key was really used
    assert (tmp_path / "registry" / "forge").is_dir() and (
        tmp_path / "build" / "cache" / "teacher"
    ).is_dir()
    openai_server.default = Status(401, message=f"Incorrect API key provided: {KEY}")
    project.edit("data/forge/raw/note-03.md", "Paragraph 0", "Paragraph zero")
    code, failed = project.run("-v", "build", str(manifest))
    assert code == 1 and "refused the API key" in failed
    assert KEY not in output and KEY not in failed
    assert (
        scan(tmp_path, KEY) == []
    )  # build/ (store, cache, logs), the lock, the registry, the manifest


@pytest.mark.parametrize(
    ("mode", "method"), [("instructions", "lora"), ("preferences", "dpo"), ("refusals", "orpo")]
)
def test_each_mode_trains(tmp_path: Path, mode: str, method: str) -> None:
    write_docs(tmp_path, 4)
    manifest = tmp_path / "manifests" / "forge.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        f"job_id: forge\nbase_model:\n  tiny: {{}}\nsynthesis:\n  provider: offline\n  mode: {mode}\n  "
        "pairs_per_chunk: 2\n"
        f"method_config:\n  type: {method}\n  rank: 4\ntraining:\n  max_steps: 2\n  max_seq_length: 64\ncompute:\n  "
        "batch_size: 2\n",
        encoding="utf-8",
    )
    code, output = Project(tmp_path).run("build", str(manifest), "--until", "train")
    assert code == 0, output
    assert (
        "offline template generator (not a language model)" in output
        and f"{method} (" in output
        and ": 2 steps on" in output
    )
