"""Story C end to end: two experts trained on two skills, merged with DARE-TIES, judged on both
golden sets beside each expert, folded, quantized to GGUF, gated, published, pulled, verified;
and a merge that takes a published release, digests checked on the way in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import Project, copy_project

pytestmark = pytest.mark.slow
EXPERTS = ("houseplants", "bike-repair")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    project = copy_project(tmp_path_factory.mktemp("story"), "home-helper", *EXPERTS)
    code, output = project.run("build", str(project.manifest))
    assert code == 0, output
    return project, output


def release_of(project: Project) -> Path:
    return project.root / project.lock_data()["published"]["uri"]


def test_building_the_merge_builds_both_experts_first(story: tuple[Project, str]) -> None:
    project, output = story
    built = [line.split()[1] for line in output.splitlines() if line.strip().startswith("✓")]
    for stage in (
        "houseplants/train",
        "bike-repair/train",
        "merge",
        "baseline",
        "evaluate",
        "compare",
        "fold",
        "quantize-gguf",
        "gate",
        "publish",
    ):
        assert stage in built, output
    assert built.index("houseplants/train") < built.index("merge") and built.index(
        "bike-repair/train"
    ) < built.index("merge")
    assert "dare_ties of 2 adapters: houseplants x1, bike-repair x1" in output
    assert "2 of 2 quality gates passed" in output
    lock = project.lock_data()["stages"]
    assert {"houseplants/train", "bike-repair/train", "merge"} <= set(lock)
    assert lock["merge"]["inputs"]["source0"] == lock["houseplants/train"]["output"]


def test_the_report_shows_each_skill_for_each_expert_and_the_merge(
    story: tuple[Project, str],
) -> None:
    project, output = story
    assert "home-helper: the merge beside its sources" in output
    assert re.search(r"houseplants\s+│\s+perplexity", output) and re.search(
        r"bike-repair\s+│\s+perplexity", output
    ), output
    comparison = json.loads((release_of(project) / "compare.json").read_text())
    assert comparison["sets"] == ["bike-repair", "houseplants"] and comparison["models"] == [
        "base",
        "bike-repair",
        "houseplants",
        "merged",
    ]
    scores = comparison["scores"]
    # Every trained model beats the random base on held-out perplexity; each expert on its own skill too.
    for skill in EXPERTS:
        base = scores[skill]["base"]["golden.perplexity"]
        assert (
            scores[skill][skill]["golden.perplexity"] < base
            and scores[skill]["merged"]["golden.perplexity"] < base
        )
    report = json.loads((release_of(project) / "report.json").read_text())
    assert set(report["by_tag"]) == {
        "expert:houseplants",
        "expert:bike-repair",
    }  # the merge's report, per inherited golden set


def test_the_release_holds_the_merge_folded_and_quantized(story: tuple[Project, str]) -> None:
    project, _ = story
    release = release_of(project)
    for name in (
        "adapter/adapter_model.safetensors",
        "merge.json",
        "folded/model.safetensors",
        "folded/tokenizer.json",
        "quantized/gguf/model-q8_0.gguf",
        "quantized/gguf/quantize.json",
        "compare.md",
        "base_model/model/config.json",
    ):
        assert (release / name).is_file(), name
    card = (release / "README.md").read_text()
    lots = project.lock_data()["stages"]
    assert (
        "## Merged from" in card
        and f"| houseplants/train | `{lots['houseplants/train']['lot']}` |" in card
    )
    assert (
        f"| bike-repair/train | `{lots['bike-repair/train']['lot']}` |" in card
        and "quantized/gguf/model-q8_0.gguf" in card
    )
    quantize = json.loads((release / "quantized" / "gguf" / "quantize.json").read_text())
    assert quantize["compression_ratio"] > 3 and abs(quantize["perplexity_change"]) < 0.05


def test_pull_verify_and_load_the_merged_release(
    story: tuple[Project, str], tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    project, _ = story
    code, output = project.run("verify", str(project.manifest))
    assert code == 0 and "verify ok" in output, output
    code, output = project.run("pull", str(project.manifest), str(tmp_path / "pulled"))
    assert code == 0, output
    assert (tmp_path / "pulled" / "quantized" / "gguf" / "model-q8_0.gguf").is_file()
    AutoModelForCausalLM.from_pretrained(tmp_path / "pulled" / "folded")  # loads as a plain model
    AutoModelForCausalLM.from_pretrained(
        tmp_path / "pulled" / "quantized" / "gguf", gguf_file="model-q8_0.gguf"
    )


def test_the_merge_serves_as_an_adapter_and_folded_side_by_side(
    story: tuple[Project, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai

    from opensem.serving.config import ServeConfig
    from opensem.serving.server import Server

    project, _ = story
    monkeypatch.setenv("OPENSEM_API_KEY", "k" * 32)
    manifest = str(project.manifest)
    server = Server(
        [f"merged={manifest}", f"folded={manifest}#folded"],
        ServeConfig(port=0),
        project.root / "build" / "cache" / "releases",
    )
    try:
        server.start()
        server.wait_ready()
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k" * 32, max_retries=0)
        kinds = {m.id: m.model_dump()["kind"] for m in client.models.list().data}
        assert kinds == {"merged": "adapter", "folded": "model"}
        for name in kinds:
            answer = client.chat.completions.create(
                model=name,
                messages=[{"role": "user", "content": "Why do fern leaves brown?"}],
                max_tokens=6,
                temperature=0,
            )
            assert answer.usage.completion_tokens > 0
    finally:
        server.close()


def test_editing_an_experts_data_makes_the_merge_stale(story: tuple[Project, str]) -> None:
    project, _ = story
    doc = "data/houseplants/docs/01-watering.md"
    original = project.edit(doc, "thoroughly", "slowly and thoroughly")
    try:
        code, output = project.run("plan", str(project.manifest), "--json")
        stages = {s["name"]: s for s in json.loads(output)["stages"]}
        assert [r["code"] for r in stages["houseplants/ingest"]["reasons"]] == ["source-changed"]
        assert stages["bike-repair/train"]["status"] == "up-to-date"
        assert (
            stages["merge"]["status"] == "stale"
            and stages["merge"]["reasons"][0]["code"] == "waits-for"
        )
        code, output = project.run("build", str(project.manifest), "--until", "merge")
        assert code == 0 and "✓ merge" in output and "bike-repair/train up to date" in output, (
            output
        )
    finally:
        (project.root / doc).write_text(original)


def test_a_published_release_merges_with_its_digest_checked(story: tuple[Project, str]) -> None:
    project, _ = story
    code, output = project.run(
        "build", str(project.root / "manifests" / "houseplants.yaml")
    )  # publishes the expert (its training is a store hit)
    assert code == 0, output
    tag = json.loads((project.root / "manifests" / "houseplants.lock").read_text())["published"][
        "tag"
    ]
    manifest = project.root / "manifests" / "from-release.yaml"
    text = project.manifest.read_text().replace("job_id: home-helper", "job_id: from-release")
    text = text.replace(
        "    - manifest: manifests/houseplants.yaml\n",
        f"    - registry: build/registry/houseplants\n      tag: {tag}\n",
    )
    manifest.write_text(text)
    code, output = project.run("build", str(manifest), "--until", "merge")
    assert code == 0 and f"houseplants:{tag} x1" in output, output
    adapter = (
        project.root
        / "build"
        / "registry"
        / "houseplants"
        / tag
        / "adapter"
        / "adapter_model.safetensors"
    )
    adapter.write_bytes(adapter.read_bytes()[:-1] + b"\0")
    code, output = project.run("build", str(manifest), "--until", "merge", "--force", "merge")
    assert code == 1 and "does not match its recorded digest" in output and "republish" in output, (
        output
    )
