"""The Training Floor through the real CLI: a killed build resumes from its checkpoint, preference
methods build from a manifest, run settings never retrain, and accelerate runs two CPU processes."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, Project

TINY = "base_model:\n  tiny:\n    hidden_size: 64\n    num_layers: 2\n    vocab_size: 2000\n"
PAIRS = [
    (
        "What grind suits espresso?",
        "A fine grind, like table salt.",
        "A coarse grind, like sea salt.",
    ),
    ("How long should a shot run?", "About 25 to 30 seconds.", "Two minutes or more."),
    (
        "What dose goes in a double basket?",
        "Around 18 grams of coffee.",
        "A whole tablespoon, loosely.",
    ),
    (
        "What water temperature is best?",
        "Between 90 and 96 degrees Celsius.",
        "Boiling water straight off the stove.",
    ),
    (
        "How do you fix a sour shot?",
        "Grind finer or pull a longer shot.",
        "Add sugar until it tastes fine.",
    ),
    (
        "Why tamp the coffee?",
        "To make an even bed the water flows through evenly.",
        "Tamping only matters for latte art.",
    ),
]


class Floor(Project):
    """A project with its own manifest (floor.yaml) next to a copy of the demo data."""

    @property
    def manifest(self) -> Path:
        return self.root / "manifests" / "floor.yaml"

    @property
    def lock(self) -> Path:
        return self.root / "manifests" / "floor.lock"

    def write(self, method: str, data: str, training: str, compute: str = "batch_size: 4") -> None:
        indent = lambda text: "\n".join(f"  {line}" for line in text.splitlines())  # noqa: E731
        self.manifest.write_text(
            f"job_id: floor\n{TINY}data:\n  sources:\n    - path: {data}\nmethod_config:\n  type: {method}\n  rank: 4\n"
            f"training:\n{indent(training)}\ncompute:\n{indent(compute)}\n",
            encoding="utf-8",
        )

    def train_lot(self) -> str:
        code, output = self.run("plan", str(self.manifest), "--json")
        assert code == 0, output
        return next(s["lot"] for s in json.loads(output)["stages"] if s["name"] == "train")


def make_floor(root: Path) -> Floor:
    (root / "manifests").mkdir(parents=True)
    shutil.copytree(REPO / "data" / "tiny-demo", root / "data" / "floor")
    prefs = [
        {"prompt": f"{p} ({n})", "chosen": c, "rejected": r} for n in range(3) for p, c, r in PAIRS
    ]
    (root / "data" / "floor" / "prefs.jsonl").write_text(
        "".join(json.dumps(p) + "\n" for p in prefs), encoding="utf-8"
    )
    # Native KTO records: one answer each, labelled good or bad.
    feedback = [
        {"prompt": p["prompt"], "completion": p[side], "label": side == "chosen"}
        for p in prefs
        for side in ("chosen", "rejected")
    ]
    (root / "data" / "floor" / "feedback.jsonl").write_text(
        "".join(json.dumps(f) + "\n" for f in feedback), encoding="utf-8"
    )
    return Floor(root)


def cli(project: Floor, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "250", "PYTHONUNBUFFERED": "1"}
    command = [
        str(Path(sys.executable).parent / "opensem"),
        *args,
    ]  # the installed console script, as a user runs it
    return subprocess.Popen(
        command,
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def complete_checkpoints(work: Path) -> list[int]:
    return sorted(
        int(p.name.split("-")[1])
        for p in work.glob("*/checkpoints/checkpoint-*")
        if (p / "trainer_state.json").is_file()
    )


@pytest.mark.slow
def test_a_killed_build_resumes_training_from_its_last_checkpoint(tmp_path: Path) -> None:
    project = make_floor(tmp_path)
    project.write(
        "lora",
        "data/floor/instructions.jsonl",
        "max_steps: 90\nsave_steps: 10\nlogging_steps: 10\nmax_seq_length: 128",
    )
    work = project.root / "build" / "work"

    build = cli(project, "build", str(project.manifest), "--until", "train")
    deadline = time.monotonic() + 300
    while not complete_checkpoints(work) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert build.poll() is None, (
        f"the build ended before its first checkpoint:\n{build.communicate()[0]}"
    )
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    saved = complete_checkpoints(work)
    (lot,) = [p.name for p in work.iterdir()]  # the work dir is keyed by the train stage's lot
    assert (
        saved
        and max(saved) < 90
        and (work / lot / "checkpoints").is_dir()
        and lot == project.train_lot()
    )
    store = project.root / "build" / "store"
    assert not (store / lot[:2] / lot).exists()  # no half entry counts as built

    code, output = project.run("build", str(project.manifest), "--until", "train")
    assert code == 0, output
    resumed = max(saved)
    assert (
        f"resuming from checkpoint checkpoint-{resumed} (step {resumed}) of a killed run" in output
    )
    assert re.search(
        rf"✓ train .* lora \(hf, cpu\): 90 steps on \d+ records, loss .*, resumed at step {resumed}",
        output,
    ), output
    meta = json.loads((store / lot[:2] / lot / "meta.json").read_text())
    assert meta["metrics"]["resumed_from_step"] == resumed and meta["metrics"]["steps"] == 90
    rows = [
        json.loads(line)
        for line in (store / lot[:2] / lot / "out" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [row["step"] for row in rows] == [
        1,
        *range(10, 91, 10),
    ]  # the whole curve, killed part included
    assert not (work / lot).exists()  # checkpoints are dropped once the entry is committed


@pytest.mark.slow
def test_preference_methods_build_and_mismatched_data_fails_before_training(tmp_path: Path) -> None:
    project = make_floor(tmp_path)
    project.write(
        "dpo", "data/floor/instructions.jsonl", "max_steps: 4\nlogging_steps: 2\nmax_seq_length: 96"
    )
    code, output = project.run("build", str(project.manifest), "--until", "train")
    assert code == 1, output
    assert re.search(
        r"dpo: \d+ of \d+ records lack the fields it needs \(prompt, chosen, rejected\)", output
    ), output
    assert (
        "hint: dpo trains on records with: prompt, chosen, rejected" in output
        and "train.jsonl:1" in output
    )

    project.write(
        "orpo", "data/floor/prefs.jsonl", "max_steps: 4\nlogging_steps: 2\nmax_seq_length: 96"
    )
    code, output = project.run("build", str(project.manifest), "--until", "train")
    assert code == 0, output
    assert re.search(r"✓ train .* orpo \(hf, cpu\): 4 steps on \d+ records", output), output
    assert (
        "no CUDA device: backend auto picks hf" in output
        and "hardware: no CUDA GPU, training on the CPU" in output
    )

    # Run settings are not part of the lot: changing them rebuilds nothing.
    project.edit(
        "manifests/floor.yaml",
        "logging_steps: 2",
        "logging_steps: 2\n  save_steps: 3\n  report_to: tensorboard",
    )
    project.edit(
        "manifests/floor.yaml",
        "batch_size: 4",
        "batch_size: 4\n  gradient_checkpointing: auto\n  max_vram_gb: 10",
    )
    code, output = project.run("build", str(project.manifest), "--until", "train")
    assert code == 0 and "train         up to date" in output, output
    # The backend is: it changes what is trained.
    project.edit("manifests/floor.yaml", "max_vram_gb: 10", "max_vram_gb: 10\n  backend: hf")
    code, output = project.run("plan", str(project.manifest), "--json")
    train = next(stage for stage in json.loads(output)["stages"] if stage["name"] == "train")
    assert code == 0 and train["status"] == "stale", output
    assert [(r["code"], r["text"]) for r in train["reasons"]] == [
        ("params-changed", "params changed: compute.backend 'auto' -> 'hf'")
    ]


@pytest.mark.slow
def test_the_accelerate_launcher_trains_native_kto_records_with_two_cpu_processes(
    tmp_path: Path,
) -> None:
    project = make_floor(tmp_path)
    compute = "batch_size: 4\nlauncher: accelerate\nnum_processes: 2"
    project.write(
        "kto",
        "data/floor/feedback.jsonl",
        "max_steps: 3\nlogging_steps: 1\nmax_seq_length: 96",
        compute,
    )
    code, output = project.run("build", str(project.manifest), "--until", "train")
    assert code == 0, output
    assert (
        "launching 2 training processes: accelerate.commands.launch" in output
        and "--multi_gpu" in output
    )
    lot = project.train_lot()
    entry = project.root / "build" / "store" / lot[:2] / lot
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["metrics"]["processes"] == 2 and meta["metrics"]["steps"] == 3
    assert (
        meta["params"]["compute"]["launcher"] == "accelerate"
        and meta["params"]["compute"]["num_processes"] == 2
    )
    rows = [json.loads(line) for line in (entry / "out" / "metrics.jsonl").read_text().splitlines()]
    # n feedback records over two processes of four per step: an epoch is ceil(n / 8) steps (one process: ceil(n / 4)).
    records = meta["metrics"]["train_records"]
    assert [row["step"] for row in rows] == [1, 2, 3] and rows[-1]["epoch"] == pytest.approx(
        3 / math.ceil(records / 8)
    )
    assert (entry / "out" / "adapter" / "adapter_model.safetensors").is_file()
