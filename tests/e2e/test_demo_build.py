"""The spine end to end on the tiny demo: fresh build, no-op, staleness, early cutoff, verify."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Project

ALL_STAGES = [
    "base_model",
    "ingest",
    "synthesize",
    "dedup",
    "split",
    "decontaminate",
    "pretrain",
    "tokenize",
    "train",
    "baseline",
    "evaluate",
    "gate",
    "publish",
]
DOC = "data/tiny-demo/docs/03-water.md"

pytestmark = pytest.mark.slow


def test_fresh_build_runs_every_stage(built_demo: tuple[Project, list[str], str]) -> None:
    project, ran, output = built_demo
    assert ran == ALL_STAGES, output
    assert set(project.lock_data()["stages"]) == set(ALL_STAGES)


def test_second_build_runs_nothing_and_plan_agrees(
    built_demo: tuple[Project, list[str], str],
) -> None:
    project, _, _ = built_demo
    ran, output = project.build()
    assert ran == [] and f"Nothing to do: all {len(ALL_STAGES)} stages up to date" in output
    code, text = project.run("plan", str(project.manifest), "--json")
    assert code == 0
    plan = json.loads(text)
    assert [s["name"] for s in plan["stages"]] == ALL_STAGES
    assert all(
        s["status"] == "up-to-date" and s["reasons"] == [] and len(s["lot"]) == 64
        for s in plan["stages"]
    )


def test_learning_rate_change_reruns_train_evaluate_publish_and_back_is_free(
    built_demo: tuple[Project, list[str], str],
) -> None:
    project, _, _ = built_demo
    lock_before = project.lock.read_text()
    original = project.edit(
        "manifests/tiny-demo.yaml", "learning_rate: 0.0003", "learning_rate: 0.0002"
    )
    code, text = project.run("plan", str(project.manifest), "--json")
    stale = {s["name"]: s["reasons"] for s in json.loads(text)["stages"] if s["status"] == "stale"}
    assert set(stale) == {"train", "evaluate", "gate", "publish"}
    assert {
        "code": "params-changed",
        "text": "params changed: training.learning_rate 0.0003 -> 0.0002",
        "key": "training.learning_rate",
        "old": 0.0003,
        "new": 0.0002,
    } in stale["train"]
    assert [r["code"] for r in stale["evaluate"]] == ["waits-for"]
    assert project.build()[0] == ["train", "evaluate", "gate", "publish"]
    assert project.lock.read_text() != lock_before
    project.manifest.write_text(original)
    ran, output = project.build()
    assert ran == [] and "Nothing to do" in output
    assert project.lock.read_text() == lock_before


def test_document_edit_reruns_what_depends_on_changed_bytes(
    built_demo: tuple[Project, list[str], str],
) -> None:
    project, _, _ = built_demo
    original = project.edit(DOC, "water", "filtered water")
    try:
        # baseline reads no training data, so it stays a store hit
        assert project.build()[0] == [
            "ingest",
            "synthesize",
            "dedup",
            "split",
            "decontaminate",
            "pretrain",
            "tokenize",
            "train",
            "evaluate",
            "gate",
            "publish",
        ]
    finally:
        (project.root / DOC).write_text(original)
    assert project.build()[0] == []


def test_whitespace_edit_stops_right_after_ingest(
    built_demo: tuple[Project, list[str], str],
) -> None:
    project, _, _ = built_demo
    path = project.root / DOC
    original = path.read_text()
    path.write_text(original.replace("\n", "   \n", 3) + "\n\n\n")
    try:
        ran, output = project.build()
        assert ran == ["ingest"], output
        assert "split         up to date" in output and "train         up to date" in output
    finally:
        path.write_text(original)
    assert project.build()[0] == []


def test_verify_passes_then_names_each_kind_of_mismatch(
    built_demo: tuple[Project, list[str], str],
) -> None:
    project, _, _ = built_demo
    code, output = project.run("verify", str(project.manifest))
    assert code == 0, output

    original = project.edit(DOC, "water", "wetter")
    code, output = project.run("verify", str(project.manifest))
    (project.root / DOC).write_text(original)
    assert code == 1 and "ingest: input source0" in output and "Traceback" not in output

    lock_text = project.lock.read_text()
    lock = json.loads(lock_text)
    lot = lock["stages"]["train"]["lot"]
    lock["stages"]["train"]["lot"] = ("0" if lot[0] != "0" else "1") + lot[1:]
    project.lock.write_text(json.dumps(lock, indent=2, sort_keys=True))
    code, output = project.run("verify", str(project.manifest))
    project.lock.write_text(lock_text)
    assert code == 1 and "train:" in output and "edited by hand" in output

    evaluate_lot = lock["stages"]["evaluate"]["lot"]
    report = (
        project.root / "build" / "store" / evaluate_lot[:2] / evaluate_lot / "out" / "report.json"
    )
    os.chmod(report, stat.S_IWUSR | stat.S_IRUSR)
    report.write_text(report.read_text().replace("{", "{ ", 1))
    code, output = project.run("verify", str(project.manifest))
    assert code == 1 and "evaluate:" in output and "tampered" in output
    # A build never trusts the tampered entry: it drops it and rebuilds that stage only.
    ran, output = project.build()
    assert ran == ["evaluate"] and "was modified" in output
    assert project.run("verify", str(project.manifest))[0] == 0


def test_verify_reports_a_missing_store_without_failing(
    built_demo: tuple[Project, list[str], str], tmp_path: Path
) -> None:
    project, _, _ = built_demo
    store = project.root / "build" / "store"
    moved = tmp_path / "store"
    os.rename(store, moved)
    try:
        code, output = project.run("verify", str(project.manifest), "--no-registry")
    finally:
        os.rename(moved, store)
    assert code == 0, output
    assert "not in the local store" in output


def test_published_adapter_loads_with_peft_and_generates(
    built_demo: tuple[Project, list[str], str],
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    project, _, _ = built_demo
    published = project.lock_data()["published"]
    assert published["uri"] == f"build/registry/tiny-demo/{published['tag']}"
    folder = project.root / published["uri"]
    assert (folder / "README.md").read_text().count("`") >= 12 and (
        folder / "tiny-demo.lock"
    ).exists()
    assert (folder / "manifest.yaml").read_bytes() == project.manifest.read_bytes()
    base = AutoModelForCausalLM.from_pretrained(folder / "base_model" / "model")
    model = PeftModel.from_pretrained(base, folder / "adapter")
    tokenizer = AutoTokenizer.from_pretrained(folder / "adapter")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "How fine should I grind?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    encoded = tokenizer(prompt, return_tensors="pt")
    output = model.generate(**encoded, max_new_tokens=12, do_sample=False)
    assert output.shape[1] > encoded["input_ids"].shape[1]
    assert isinstance(tokenizer.decode(output[0]), str)


def test_the_published_release_serves_through_the_openai_client(
    built_demo: tuple[Project, list[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai

    from opensem.serving.config import ServeConfig
    from opensem.serving.server import Server

    project, _, _ = built_demo
    monkeypatch.setenv("OPENSEM_API_KEY", "k" * 32)
    server = Server(
        [str(project.manifest)], ServeConfig(port=0), project.root / "build" / "cache" / "releases"
    )
    try:
        server.start()
        server.wait_ready()
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k" * 32, max_retries=0)
        card = client.models.retrieve("tiny-demo").model_dump()
        assert (
            card["lot"] == project.lock_data()["published"]["lot"]
            and card["tag"] == project.lock_data()["published"]["tag"]
        )
        answer = client.chat.completions.create(
            model="tiny-demo",
            messages=[{"role": "user", "content": "How fine should I grind?"}],
            max_tokens=8,
            temperature=0,
        )
        assert answer.usage.completion_tokens > 0 and answer.choices[0].finish_reason in (
            "length",
            "stop",
        )
        stream = client.chat.completions.create(
            model="tiny-demo",
            messages=[{"role": "user", "content": "How fine should I grind?"}],
            max_tokens=8,
            temperature=0,
            stream=True,
        )
        assert (
            "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            == answer.choices[0].message.content
        )
    finally:
        server.close()


def test_force_and_until(built_demo: tuple[Project, list[str], str]) -> None:
    project, _, _ = built_demo
    lock_before = project.lock.read_text()
    assert project.build("--force", "split")[0] == [
        "split"
    ]  # same bytes again: downstream stays cached
    assert project.build("--until", "ingest")[0] == []
    code, output = project.run("build", str(project.manifest), "--force", "nosuchstage")
    assert code == 2 and "no stage named nosuchstage" in output
    assert project.lock.read_text() == lock_before


def test_plain_doit_sees_the_same_builds(built_demo: tuple[Project, list[str], str]) -> None:
    project, _, _ = built_demo
    doit = [sys.executable, "-m", "doit", "-f", str(project.root / "dodo.py")]
    listed = subprocess.run(
        [*doit, "list", "--all"], capture_output=True, text=True, cwd=project.root
    )
    assert listed.returncode == 0, listed.stderr
    assert all(f"tiny-demo:{stage}" in listed.stdout for stage in ALL_STAGES)
    ran = subprocess.run(doit, capture_output=True, text=True, cwd=project.root)
    assert ran.returncode == 0, ran.stderr
    assert "running" not in ran.stderr and "up to date" in ran.stderr


def test_an_invalid_manifest_is_reported_and_doit_goes_on_with_the_others(
    built_demo: tuple[Project, list[str], str],
) -> None:
    project, _, _ = built_demo
    broken = project.root / "manifests" / "broken.yaml"
    broken.write_text("job_id: broken\nbase_model: org/model\ntraining: {max_steps: -3}\n")
    doit = [sys.executable, "-m", "doit", "-f", str(project.root / "dodo.py")]
    try:
        listed = subprocess.run(
            [*doit, "list", "--all"], capture_output=True, text=True, cwd=project.root
        )
        ran = subprocess.run([*doit, "-n", "2"], capture_output=True, text=True, cwd=project.root)
    finally:
        broken.unlink()
    assert listed.returncode == 0 and "tiny-demo:train" in listed.stdout, listed.stderr
    assert "!! broken.yaml is invalid" in listed.stderr and "training.max_steps" in listed.stderr
    assert ran.returncode == 0 and "running" not in ran.stderr and "up to date" in ran.stderr, (
        ran.stderr
    )


def test_failed_stage_keeps_everything_already_built(
    built_demo: tuple[Project, list[str], str],
) -> None:
    project, _, _ = built_demo
    lock_before = project.lock.read_text()
    original = project.edit(
        "manifests/tiny-demo.yaml", "dropout: 0.0", "dropout: 0.0\n  target_modules: [no_such_proj]"
    )
    try:
        code, output = project.run("build", str(project.manifest))
    finally:
        project.manifest.write_text(original)
    assert code == 1 and "train" in output and "Traceback" not in output and "hint:" in output
    assert project.lock.read_text() == lock_before
    assert not any((project.root / "build" / "store" / ".tmp").iterdir())
    assert project.build()[0] == []


def test_no_heavy_imports_for_light_commands(built_demo: tuple[Project, list[str], str]) -> None:
    project, _, _ = built_demo
    script = (
        "import sys\n"
        "from opensem.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets') if m in sys.modules))\n"
    )
    for args in (
        ["--help"],
        ["plan", str(project.manifest)],
        ["build", str(project.manifest)],
        ["lots", str(project.manifest)],
    ):
        result = subprocess.run(
            [sys.executable, "-c", script, *args], capture_output=True, text=True
        )
        assert result.stdout.strip().splitlines()[-1] == "[]", (args, result.stdout, result.stderr)
    bare = subprocess.run(
        [sys.executable, "-c", "import sys, opensem; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert bare.stdout.strip() == "False"
