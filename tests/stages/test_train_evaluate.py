"""The train and evaluate stages on the tiny model: real training, real adapters, real perplexities."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opensem.errors import DataError
from opensem.evaluation.params import EvaluateParams
from opensem.stages.base import StageContext, StageResult
from opensem.stages.evaluate import Evaluate
from opensem.stages.train import Train
from tests.params import params
from tests.training.params import train_params

OBJECTS = [
    "apple",
    "sky",
    "grass",
    "snow",
    "coal",
    "lemon",
    "cherry",
    "ocean",
    "cloud",
    "carrot",
    "banana",
    "tomato",
    "pumpkin",
    "violet",
    "emerald",
    "ruby",
    "sapphire",
    "orange",
    "plum",
    "lime",
    "cocoa",
    "ivory",
    "ink",
    "rose",
    "lilac",
    "mint",
    "olive",
    "peach",
    "salmon",
    "sand",
    "slate",
    "steel",
    "straw",
    "honey",
    "coral",
    "pearl",
    "jade",
    "amber",
    "cream",
    "smoke",
    "brick",
    "denim",
    "moss",
    "rust",
    "wine",
    "gold",
    "silver",
    "copper",
]
COLORS = ["red", "blue", "green", "white", "black", "yellow", "purple", "brown", "grey", "pink"]


def facts(start: int, stop: int) -> list[dict[str, Any]]:
    """Instruction records (and every fifth a document) that share one pattern, so tuning on some helps on others."""
    out: list[dict[str, Any]] = []
    for i in range(start, stop):
        thing, color = OBJECTS[i % len(OBJECTS)], COLORS[i % len(COLORS)]
        if i % 5 == 4:
            out.append(
                {
                    "id": f"d{i}",
                    "source": "facts.txt",
                    "text": f"Everyone knows that the {thing} is {color}.",
                }
            )
        else:
            messages = [
                {"role": "system", "content": "Answer in one sentence."},
                {"role": "user", "content": f"What color is the {thing}?"},
                {"role": "assistant", "content": f"The {thing} is {color}."},
            ]
            out.append({"id": f"q{i}", "source": "facts.jsonl", "messages": messages})
    return out


def write_jsonl(directory: Path, name: str, records: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return directory


@dataclass
class RecordingProgress:
    description: str
    total: int | None
    advanced: int = 0
    closed: bool = False

    def advance(self, amount: int = 1) -> None:
        self.advanced += amount

    def close(self) -> None:
        self.closed = True


@dataclass
class Recorder:
    bars: list[RecordingProgress] = field(default_factory=list)

    def __call__(self, description: str, total: int | None) -> RecordingProgress:
        self.bars.append(RecordingProgress(description, total))
        return self.bars[-1]


def context(root: Path, stage: str, recorder: Recorder | None = None) -> StageContext:
    kwargs: dict[str, Any] = {"progress": recorder} if recorder else {}
    return StageContext(
        project_root=root,
        job_id="t",
        stage_name=stage,
        work_dir=root / "work",
        cache_dir=root / "cache",
        **kwargs,
    )


@dataclass
class Trained:
    root: Path
    base: Path
    test: Path
    out: Path
    result: StageResult
    progress: Recorder


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One real training run: 40 records, 30 steps of LoRA on the tiny model."""
    root = tmp_path_factory.mktemp("train")
    train_dir = write_jsonl(root / "split", "train.jsonl", facts(0, 40))
    test_dir = write_jsonl(root / "split", "test.jsonl", facts(40, 48))
    out = root / "out"
    out.mkdir()
    recorder = Recorder()
    params = train_params(
        rank=8, max_steps=30, learning_rate=1e-2, logging_steps=10, batch_size=4, seed=7
    )
    result = Train().run(
        params,
        {"train": train_dir, "base": tiny_model_dir.parent},
        out,
        context(root, "train", recorder),
    )
    return Trained(root, tiny_model_dir.parent, test_dir, out, result, recorder)


def test_train_writes_only_final_artifacts(trained: Trained) -> None:
    assert sorted(p.name for p in trained.out.iterdir()) == ["adapter", "loss.png", "metrics.jsonl"]
    adapter = trained.out / "adapter"
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= {p.name for p in adapter.iterdir()}
    assert (trained.out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (trained.root / "work" / "checkpoints").exists()


def test_train_metrics_and_progress(trained: Trained) -> None:
    rows = [json.loads(line) for line in (trained.out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 10, 20, 30]
    assert set(rows[0]) == {"step", "loss", "learning_rate", "grad_norm", "epoch"}
    assert rows[-1]["loss"] < rows[0]["loss"]
    metrics = trained.result.metrics
    assert metrics["steps"] == 30 and metrics["train_records"] == 40
    assert metrics["train_loss"] == pytest.approx(rows[-1]["loss"], abs=1e-6)
    assert metrics["train_runtime_s"] > 0
    assert "30 steps on 40 records" in trained.result.summary
    (bar,) = trained.progress.bars
    assert (bar.description, bar.total, bar.advanced, bar.closed) == ("training", 30, 30, True)


def test_evaluate_reports_lower_perplexity_after_tuning(trained: Trained) -> None:
    out = trained.root / "eval"
    out.mkdir()
    recorder = Recorder()
    inputs = {"test": trained.test, "adapter": trained.out, "base": trained.base}
    result = Evaluate().run(
        params(EvaluateParams, batch_size=3, max_new_tokens=8, seed=0),
        inputs,
        out,
        context(trained.root, "evaluate", recorder),
    )

    report = json.loads((out / "report.json").read_text())
    counts = report["counts"]["tuned"]
    assert counts["test.records"] == 8 and counts["test.tokens"] > 8 * 10
    loss, perplexity = report["metrics"]["test.loss"], report["metrics"]["test.perplexity"]
    for side in ("base", "tuned"):
        assert math.isfinite(loss[side]) and math.isfinite(perplexity[side])
        assert perplexity[side] == pytest.approx(math.exp(loss[side]), rel=1e-5)
    assert perplexity["tuned"] < perplexity["base"] and perplexity["change"] == "better"
    assert loss["delta"] == pytest.approx(loss["tuned"] - loss["base"], abs=2e-6)
    assert result.metrics["tuned"]["test.perplexity"] == perplexity["tuned"]
    assert result.summary.startswith("perplexity ") and "Accuracy" in result.summary
    (bar,) = recorder.bars
    # 3 scoring batches and 7 generated answers (the 8 test records hold 7 questions) per model.
    assert (bar.description, bar.total, bar.advanced, bar.closed) == ("evaluating", 20, 20, True)

    again = trained.root / "eval-again"
    again.mkdir()
    Evaluate().run(
        params(EvaluateParams, batch_size=3, max_new_tokens=8, seed=0),
        inputs,
        again,
        context(trained.root, "evaluate"),
    )
    for name in ("report.json", "report.md", "report.png", "predictions.jsonl"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_evaluate_max_records_limits_the_test_set(trained: Trained) -> None:
    out = trained.root / "eval-few"
    out.mkdir()
    inputs = {"test": trained.test, "adapter": trained.out, "base": trained.base}
    result = Evaluate().run(
        params(EvaluateParams, max_records=2, max_new_tokens=4, seed=0),
        inputs,
        out,
        context(trained.root, "evaluate"),
    )
    assert json.loads((out / "report.json").read_text())["counts"]["tuned"]["test.records"] == 2
    assert result.metrics["tuned"]["test.perplexity"] > 0


def test_preference_data_fails_before_any_model_loads(tmp_path: Path) -> None:
    prefs = [
        {"id": f"p{i}", "source": "s", "prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}
        for i in range(5)
    ]
    train_dir = write_jsonl(tmp_path / "split", "train.jsonl", prefs)
    out = tmp_path / "out"
    out.mkdir()
    # The base model does not exist: only a check that runs before loading can produce the DataError.
    with pytest.raises(DataError) as info:
        Train().run(
            train_params(max_steps=1, base_model=str(tmp_path / "no-such-model")),
            {"train": train_dir},
            out,
            context(tmp_path, "train"),
        )
    assert info.value.message.startswith(
        "lora: 5 of 5 records lack the fields it needs (messages | text)"
    )
    assert info.value.location.line == 1
    assert list(out.iterdir()) == []


def test_params_are_validated() -> None:
    with pytest.raises(
        ValidationError, match="does not match any of the expected tags: 'type=lora'"
    ):
        train_params("telepathy")
    with pytest.raises(ValidationError):
        train_params(rank=0)
    with pytest.raises(ValidationError, match="rank"):
        train_params("sft", rank=8)  # full fine-tuning has no adapter to shape
    assert train_params(target_modules=["q_proj", "v_proj"]).method_config.target_modules == [
        "q_proj",
        "v_proj",
    ]
    assert (
        train_params("dpo").method_config.beta == 0.1
        and train_params("kto", beta=0.3).method_config.beta == 0.3
    )


def test_importing_the_stages_loads_no_ml_library() -> None:
    code = (
        "import sys, opensem, opensem.stages.train, opensem.stages.evaluate, opensem.stages.tiny_model\n"
        "import opensem.training.methods.lora, opensem.training.data, opensem.training.tiny\n"
        "from opensem.training.methods import method_names; method_names()\n"
        "from opensem.stages.train import Train; Train.Params.model_validate({'seed': 1})\n"
        "from opensem.manifest.schema import manifest_schema; manifest_schema()\n"
        "heavy = {'torch', 'transformers', 'peft', 'trl', 'datasets', 'tokenizers'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
