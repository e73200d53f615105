"""How a merge joins the graph: other manifests' stages under their job ids, inherited golden sets,
and everything that cannot merge refused while wiring, at its manifest key."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.core.graph import UpstreamInput
from opensem.errors import ManifestError
from opensem.manifest.loader import load_manifest
from opensem.stages.wiring import build_graph

TINY = "base_model:\n  tiny: {hidden_size: 64}\n"


def expert(
    root: Path, job: str, method: str = "type: lora, rank: 4", base: str = TINY, extra: str = ""
) -> str:
    for folder, name, text in (
        ("raw", "a.txt", f"All about {job}.\n"),
        ("golden", "g.jsonl", '{"question": "Q?", "answer": "A."}\n'),
    ):
        (root / "data" / job / folder).mkdir(parents=True, exist_ok=True)
        (root / "data" / job / folder / name).write_text(text)
    (root / "manifests").mkdir(exist_ok=True)
    (root / "manifests" / f"{job}.yaml").write_text(
        f"job_id: {job}\n{base}method_config: {{{method}}}\n{extra}"
    )
    return f"manifests/{job}.yaml"


def merged(root: Path, sources: str, extra: str = "", method: str = "dare_ties") -> Path:
    path = root / "manifests" / "merged.yaml"
    path.write_text(
        f"job_id: merged\n{TINY}merge:\n  method: {method}\n  sources:\n{sources}{extra}"
    )
    return path


def problems(path: Path) -> list[tuple[str | None, str]]:
    with pytest.raises(ManifestError) as info:
        build_graph(load_manifest(path))
    return [(p.location.key, p.message) for p in info.value.problems]


def test_other_experts_join_the_graph_with_their_golden_sets(tmp_path: Path) -> None:
    a, b = expert(tmp_path, "plants"), expert(tmp_path, "bikes")
    manifest = merged(
        tmp_path,
        f"    - manifest: {a}\n    - manifest: {b}\n      weight: 0.5\n",
        "fold: {}\nquantize: {formats: [{format: gguf}]}\n",
    )
    graph = build_graph(load_manifest(manifest))
    assert graph.names == [
        "base_model",
        "plants/base_model",
        "plants/ingest",
        "plants/split",
        "plants/tokenize",
        "plants/train",
        "bikes/base_model",
        "bikes/ingest",
        "bikes/split",
        "bikes/tokenize",
        "bikes/train",
        "merge",
        "baseline",
        "evaluate",
        "compare",
        "fold",
        "quantize-gguf",
    ]  # only what the merge needs of the other manifests: not their evaluation or publishing
    merge = graph.node("merge")
    assert merge.inputs == {
        "base": UpstreamInput(stage="base_model"),
        "source0": UpstreamInput(stage="plants/train"),
        "source1": UpstreamInput(stage="bikes/train"),
    }
    assert [(s["name"], s["weight"]) for s in merge.params["sources"]] == [
        ("plants", 1.0),
        ("bikes", 0.5),
    ]
    assert graph.node("plants/split").inputs == {"records": UpstreamInput(stage="plants/ingest")}
    for name in ("baseline", "evaluate", "compare"):
        assert {slot for slot in graph.node(name).inputs if slot.startswith("golden")} == {
            "golden:plants",
            "golden:bikes",
        }
    assert "test" not in graph.node("evaluate").inputs  # the merge has no data of its own
    assert graph.node("compare").inputs["model:merged"] == UpstreamInput(stage="merge")
    assert graph.node("fold").inputs["trained"] == UpstreamInput(stage="merge")
    assert sorted(p.name for p in graph.included) == ["bikes.yaml", "plants.yaml"]


def test_a_cycle_between_manifests_names_them(tmp_path: Path) -> None:
    expert(
        tmp_path, "a", extra="merge:\n  sources: [{stage: train}, {manifest: manifests/b.yaml}]\n"
    )
    expert(
        tmp_path, "b", extra="merge:\n  sources: [{stage: train}, {manifest: manifests/a.yaml}]\n"
    )
    [(key, message)] = problems(tmp_path / "manifests" / "a.yaml")
    assert (
        key == "merge.sources[1].manifest"
        and message == "manifests include each other in a cycle: a.yaml -> b.yaml -> a.yaml"
    )


def test_what_cannot_merge_is_refused_at_its_key(tmp_path: Path) -> None:
    a = expert(tmp_path, "a")
    other_base = expert(
        tmp_path, "other", base="base_model:\n  tiny: {hidden_size: 32, num_heads: 2}\n"
    )
    dora = expert(tmp_path, "d", method="type: dora, rank: 4")
    wide = expert(tmp_path, "w", method="type: lora, rank: 8")
    found = problems(merged(tmp_path, f"    - manifest: {a}\n    - manifest: {other_base}\n"))
    assert found[0][0] == "merge.sources[1].manifest" and found[0][1].startswith(
        "other adapts another base model (tiny {'hidden_size': 32"
    )
    assert problems(merged(tmp_path, f"    - manifest: {a}\n    - manifest: {dora}\n"))[0][
        1
    ].startswith("DoRA adapters cannot go through a weighted merge")
    assert problems(merged(tmp_path, f"    - manifest: {a}\n    - manifest: {wide}\n")) == [
        ("merge.method", "dare_ties combines adapters of one rank, and these differ (a r=4, w r=8)")
    ]
    build_graph(
        load_manifest(
            merged(tmp_path, f"    - manifest: {a}\n    - manifest: {wide}\n", method="cat")
        )
    )  # cat takes any ranks
    assert problems(merged(tmp_path, f"    - manifest: {a}\n    - stage: train\n"))[0] == (
        "merge.sources[1].stage",
        "this manifest trains no adapter to merge (it has no data)",
    )
    assert problems(
        merged(tmp_path, f"    - manifest: {a}\n    - registry: build/registry/a\n      tag: v9\n")
    ) == [("merge.sources[1].tag", "build/registry/a has no release 'v9'")]


def test_sources_name_exactly_one_origin_and_quantize_needs_a_whole_model(tmp_path: Path) -> None:
    a = expert(tmp_path, "a")
    found = problems(
        merged(tmp_path, f"    - manifest: {a}\n      stage: train\n    - registry: x\n")
    )
    assert (
        "merge.sources[0]",
        "a merge source names exactly one of stage, manifest, registry; this one names stage, manifest",
    ) in found
    assert (
        "merge.sources[1]",
        "a registry source needs a tag, and only a registry source takes one",
    ) in found
    expert(tmp_path, "q", extra="quantize: {formats: [{format: gguf}]}\n")
    assert problems(tmp_path / "manifests" / "q.yaml") == [
        ("quantize", "quantize needs a whole model, and this manifest ships an adapter")
    ]
    expert(
        tmp_path,
        "s",
        method="type: sft",
        extra="quantize: {formats: [{format: gguf}, {format: awq, bits: 4}]}\n",
    )
    graph = build_graph(load_manifest(tmp_path / "manifests" / "s.yaml"))
    assert (
        graph.node("quantize-gguf").inputs["model"] == UpstreamInput(stage="train")
        and "quantize-awq" in graph.names
    )


def test_one_wrong_source_is_reported_once_not_by_every_stage_after_the_merge(
    tmp_path: Path,
) -> None:
    a = expert(tmp_path, "a")
    after = (
        "fold: {}\nquantize: {formats: [{format: gguf}]}\nevaluation:\n  gates:\n    - {metric: "
        "quantized.compression_ratio, min: 1.5}\n"
    )
    assert problems(
        merged(tmp_path, f"    - manifest: {a}\n    - manifest: manifests/nope.yaml\n", after)
    ) == [("merge.sources[1].manifest", "path 'manifests/nope.yaml' does not exist")]
    expert(
        tmp_path,
        "x",
        extra="merge:\n  sources: [{stage: train}, {manifest: manifests/y.yaml}]\n" + after,
    )
    expert(
        tmp_path, "y", extra="merge:\n  sources: [{stage: train}, {manifest: manifests/x.yaml}]\n"
    )
    assert [key for key, _ in problems(tmp_path / "manifests" / "x.yaml")] == [
        "merge.sources[1].manifest"
    ]


def test_an_expert_continued_by_pretraining_is_not_merged_on_the_plain_base(tmp_path: Path) -> None:
    a, pretrained = expert(tmp_path, "a"), expert(tmp_path, "p", extra="pretrain: {}\n")
    [(key, message)] = problems(
        merged(tmp_path, f"    - manifest: {a}\n    - manifest: {pretrained}\n")
    )
    assert key == "merge.sources[1].manifest" and message.endswith(
        ", continued by p/pretrain) than this manifest (tiny {'hidden_size': 64, 'num_layers': 2, 'num_heads': 4, "
        "'vocab_size': 2000, 'seed': 0})"
    )
    own = tmp_path / "manifests" / "own.yaml"
    expert(
        tmp_path,
        "own",
        extra=f"pretrain: {{}}\nmerge:\n  sources: [{{stage: train}}, {{manifest: {a}}}]\n",
    )
    assert [k for k, _ in problems(own)] == [
        "merge.sources[1].manifest"
    ]  # its own adapter is on the pretrained base, a's is not


def test_a_published_dora_release_is_refused_while_planning(tmp_path: Path) -> None:
    from opensem.release.registry import open_registry, publish_files

    config = tmp_path / "adapter_config.json"
    config.write_text('{"use_dora": true, "r": 4, "peft_type": "LORA"}')
    fs, root = open_registry("build/registry", tmp_path)
    publish_files(fs, root, "d", "v1", "0" * 64, {"adapter_config.json": config}, {})
    a = expert(tmp_path, "a")
    assert problems(
        merged(tmp_path, f"    - manifest: {a}\n    - registry: build/registry/d\n      tag: v1\n")
    ) == [
        (
            "merge.sources",
            "DoRA adapters cannot go through a weighted merge (peft issue 3761: wrong results): d:v1",
        )
    ]
