"""A distillation teacher enters the train stage as an input: a local folder by its bytes, another
manifest's model through that manifest's stages, a hub id by its name; the stage passes it on."""

from __future__ import annotations

import json
from pathlib import Path

from opensem.core.graph import SourceInput, UpstreamInput
from opensem.errors import ManifestError
from opensem.project import load_graph
from opensem.stages.train import Train
from tests.stages.test_tokenize_wiring import demo
from tests.stages.test_train_evaluate import context, facts, write_jsonl
from tests.training.params import train_params

LORA = "method_config:\n  type: lora"


def distilled(tmp_path: Path, teacher: str) -> Path:
    return demo(tmp_path, (LORA, f"method_config:\n  type: distill\n  teacher: {teacher}"))


def test_another_manifests_model_teaches_through_its_own_stages(tmp_path: Path) -> None:
    demo(
        tmp_path,
        ("job_id: tiny-demo", "job_id: big"),
        (LORA + "\n  rank: 8\n  dropout: 0.0", "method_config:\n  type: sft"),
    )  # m0.yaml: the teacher
    graph = load_graph(distilled(tmp_path, "{manifest: manifests/m0.yaml}"))
    train = graph.node("train")
    assert train.inputs["teacher"] == UpstreamInput(stage="big/train") and train.inputs[
        "teacher_base"
    ] == UpstreamInput(stage="big/pretrain")  # its adapter sits on its pretrained base
    assert "big/train" in graph.names and train.params["method_config"]["teacher"] == {
        "manifest": "manifests/m0.yaml"
    }


def test_a_local_teacher_is_keyed_by_its_bytes_and_a_hub_id_by_its_name(tmp_path: Path) -> None:
    (tmp_path / "models" / "teacher").mkdir(parents=True)
    (tmp_path / "models" / "teacher" / "config.json").write_text("{}")
    local = load_graph(distilled(tmp_path, "./models/teacher")).node("train")
    assert local.inputs["teacher"] == SourceInput(path="models/teacher")
    hub = load_graph(distilled(tmp_path, "Qwen/Qwen2.5-7B-Instruct")).node("train")
    assert (
        "teacher" not in hub.inputs
        and hub.params["method_config"]["teacher"] == "Qwen/Qwen2.5-7B-Instruct"
    )


def test_a_missing_teacher_is_named_by_its_key_and_line(tmp_path: Path) -> None:
    path = distilled(tmp_path, "./models/nowhere")
    try:
        load_graph(path)
    except ManifestError as exc:
        problem = next(p for p in exc.problems if "nowhere" in p.message)
        assert (
            problem.location.key == "method_config.teacher"
            and problem.location.line
            == path.read_text().splitlines().index("  teacher: ./models/nowhere") + 1
        )
    else:
        raise AssertionError("a missing teacher folder was accepted")


def test_the_train_stage_hands_its_teacher_input_to_the_method(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    split = write_jsonl(tmp_path / "split", "train.jsonl", facts(0, 24))
    out = tmp_path / "out"
    out.mkdir()
    settings = train_params(
        "distill", teacher="unused/hub-id", rank=4, max_steps=4, logging_steps=2, batch_size=8
    )
    result = Train().run(
        settings,
        {"train": split, "base": tiny_model_dir.parent, "teacher": tiny_model_dir.parent},
        out,
        context(tmp_path, "train"),
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert (
        all("loss_soft" in row and "loss_hard" in row for row in rows if "loss" in row)
        and "distill" in result.summary
    )
