"""Continued pretraining: golden-overlapping sentences never reach it, it produces the base train and
publish use, and the baseline keeps comparing against the manifest's own base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensem.core.graph import UpstreamInput
from opensem.project import load_graph
from opensem.stages.pretrain import Pretrain, PretrainParams, _clean_documents
from tests.params import params
from tests.stages.test_tokenize_wiring import REPO, demo
from tests.stages.test_train_evaluate import context, write_jsonl

GOLDEN = {
    "id": "g1",
    "question": "How long should freshly roasted beans rest before brewing espresso?",
    "answer": "Freshly roasted beans rest for about one week before they are brewed as espresso.",
}
LEAK = "As every barista says, freshly roasted beans rest for about one week before they are brewed as espresso."
DOCUMENT = (
    "A fine grind slows the shot down and a coarse grind speeds it up. "
    f"{LEAK} Tamp level and firm so that water finds no easy channel through the puck."
)


def test_documents_lose_each_sentence_that_shares_a_13gram_with_the_golden_set(
    tmp_path: Path,
) -> None:
    golden = write_jsonl(tmp_path / "golden", "golden.jsonl", [GOLDEN])
    cleaned, removed = _clean_documents(
        [{"id": "d1", "text": DOCUMENT}, {"id": "d2", "text": LEAK}], golden
    )
    assert removed == 2 and [row["id"] for row in cleaned] == ["d1"]  # d2 was nothing but the leak
    assert (
        "freshly roasted" not in cleaned[0]["text"]
        and "A fine grind" in cleaned[0]["text"]
        and "Tamp level" in cleaned[0]["text"]
    )
    assert _clean_documents([{"id": "d1", "text": DOCUMENT}], None) == (
        [{"id": "d1", "text": DOCUMENT}],
        0,
    )


def test_the_pretrained_base_feeds_training_and_publishing_while_the_baseline_keeps_the_original(
    tmp_path: Path,
) -> None:
    graph = load_graph(
        demo(tmp_path, ("  source: train", "  source: documents"))
    )  # the demo pretrains on its train split
    node, original, pretrained = (
        graph.node("pretrain"),
        UpstreamInput(stage="base_model"),
        UpstreamInput(stage="pretrain"),
    )
    assert (
        node.inputs["data"] == UpstreamInput(stage="ingest")
        and "golden" in node.inputs
        and node.inputs["base"] == original
    )
    assert (
        graph.node("baseline").inputs["base"] == original
        and graph.node("tokenize").inputs["base"] == original
    )  # same tokenizer
    assert (
        graph.node("train").inputs["base"] == pretrained
        and graph.node("publish").inputs["base"] == pretrained
    )
    assert (
        graph.node("evaluate").inputs["base"] == original
        and graph.node("evaluate").inputs["tuned_base"] == pretrained
    )
    assert (
        graph.node("publish").params["base_model"] == "base_model/model"
    )  # the pretrained base ships beside the adapter

    on_train = load_graph(demo(tmp_path))
    assert (
        on_train.node("pretrain").inputs["data"] == UpstreamInput(stage="decontaminate")
        and "golden" not in on_train.node("pretrain").inputs
    )
    text = (REPO / "manifests" / "tiny-demo.yaml").read_text()
    block = text[text.index("pretrain:\n") : text.index("method_config:")]
    without = load_graph(demo(tmp_path, (block, "")))
    assert (
        "pretrain" not in without.names
        and without.node("train").inputs["base"] == original
        and "tuned_base" not in without.node("evaluate").inputs
    )


@pytest.mark.parametrize("adapter", ["none", "lora"])
def test_pretraining_writes_a_whole_model_that_learned_the_documents(
    adapter: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    documents = [{"id": f"d{i}", "text": DOCUMENT} for i in range(12)]
    data = write_jsonl(tmp_path / "ingest", "records.jsonl", documents)
    golden = write_jsonl(tmp_path / "golden", "golden.jsonl", [GOLDEN])
    settings = params(
        PretrainParams,
        pretrain={
            "adapter": adapter,
            "rank": 4,
            "max_steps": 12,
            "learning_rate": 0.01,
            "max_seq_length": 64,
            "logging_steps": 2,
        },
        compute={"batch_size": 4},
        seed=1,
    )
    out = tmp_path / "out"
    out.mkdir()
    result = Pretrain().run(
        settings,
        {"data": data, "base": tiny_model_dir.parent, "golden": golden},
        out,
        context(tmp_path, "pretrain"),
    )
    assert result.metrics["removed_sentences"] == 12 and result.metrics["steps"] == 12
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "llama"
    assert not list((out / "model").glob("adapter_*"))  # a whole model, not an adapter to apply

    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    ids = torch.tensor([tokenizer(DOCUMENT.replace(LEAK + " ", ""))["input_ids"]])

    def loss(path: Path) -> float:
        with torch.no_grad():
            return float(AutoModelForCausalLM.from_pretrained(path).eval()(ids, labels=ids).loss)

    assert loss(out / "model") < loss(tiny_model_dir) - 0.5, result.summary
