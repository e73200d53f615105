"""The tokenize stage's lot: keyed by data, tokenizer and sequence settings, not by the optimizer."""

from __future__ import annotations

import shutil
from pathlib import Path

from opensem.core.graph import UpstreamInput
from opensem.project import load_graph

REPO = Path(__file__).resolve().parents[2]


def demo(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    if not (tmp_path / "data").exists():
        shutil.copytree(REPO / "data" / "tiny-demo", tmp_path / "data" / "tiny-demo")
    text = (REPO / "manifests" / "tiny-demo.yaml").read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "manifests" / f"m{len(list(tmp_path.glob('manifests/*')))}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_tokenize_sits_between_the_split_and_training(tmp_path: Path) -> None:
    graph = load_graph(demo(tmp_path))
    tokenize, train, evaluate = graph.node("tokenize"), graph.node("train"), graph.node("evaluate")
    assert set(tokenize.inputs) == {"train", "test", "base"} and tokenize.inputs[
        "train"
    ] == UpstreamInput(stage="decontaminate")
    assert train.inputs["tokens"] == UpstreamInput(stage="tokenize") and "train" not in train.inputs
    assert evaluate.inputs["tokens"] == UpstreamInput(stage="tokenize")
    assert tokenize.params == {
        "training": {"max_seq_length": 256, "packing": False, "loss_on": "all"},
        "shape": "sft",
        "base_model": None,
    }


def test_the_optimizer_reaches_train_not_tokenize_and_the_sequence_length_both(
    tmp_path: Path,
) -> None:
    base = load_graph(demo(tmp_path))
    lr = load_graph(
        demo(tmp_path, ("learning_rate: 0.0003", "learning_rate: 0.001"), ("rank: 8", "rank: 16"))
    )
    length = load_graph(demo(tmp_path, ("max_seq_length: 256", "max_seq_length: 128")))
    assert (
        lr.node("tokenize").params == base.node("tokenize").params
        and lr.node("train").params != base.node("train").params
    )
    assert length.node("tokenize").params != base.node("tokenize").params


def test_preference_methods_tokenize_pairs_here_keyed_by_their_shape(tmp_path: Path) -> None:
    dpo = load_graph(
        demo(tmp_path, ("mode: instructions", "mode: preferences"), ("type: lora", "type: dpo"))
    )
    kto = load_graph(
        demo(tmp_path, ("mode: instructions", "mode: preferences"), ("type: lora", "type: kto"))
    )
    assert (
        dpo.node("train").inputs["tokens"] == UpstreamInput(stage="tokenize")
        and "train" not in dpo.node("train").inputs
    )
    assert (
        dpo.node("tokenize").params["shape"] == "preference"
        and kto.node("tokenize").params["shape"] == "feedback"
    )
    assert dpo.node("tokenize").params["training"] == {
        "max_seq_length": 256,
        "packing": False,
        "loss_on": "all",
    }  # the last two are refused otherwise
    orpo = load_graph(
        demo(tmp_path, ("mode: instructions", "mode: preferences"), ("type: lora", "type: orpo"))
    )
    assert (
        orpo.node("tokenize").params == dpo.node("tokenize").params
    )  # one stored result serves both


def test_packing_is_refused_for_pair_methods(tmp_path: Path) -> None:
    from opensem.errors import ManifestError

    path = demo(
        tmp_path,
        ("mode: instructions", "mode: preferences"),
        ("type: lora", "type: dpo"),
        ("max_seq_length: 256", "max_seq_length: 256\n  packing: true"),
    )
    try:
        load_graph(path)
    except ManifestError as exc:
        assert any(
            p.location.key == "training.packing"
            and "dpo trains on prompt/answer pairs" in p.message
            for p in exc.problems
        ), exc.problems
    else:
        raise AssertionError("packing was accepted for dpo")
