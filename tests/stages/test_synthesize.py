"""The synthesize stage: documents in, generated records out, through the offline and openai teachers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from opensem.data.formats import normalize, record_kind
from opensem.errors import DataError
from opensem.forge.config import synthesis_config
from opensem.stages.base import StageContext, StageResult
from opensem.stages.synthesize import Synthesize, SynthesizeParams
from opensem.teachers import BudgetExceeded
from opensem.training.data import check_shapes, load_records
from opensem.training.methods.base import PREFERENCE_SHAPES, SFT_SHAPES
from tests.servers.openai_compatible import OpenAICompatibleServer

KEY = "sk-synth-test-key-42"
DOCS = [
    "# Grind Size\n\nGrind finer when the shot runs fast. A double shot takes 25 to 30 seconds.\n\n## Burrs\n\nFlat "
    "burrs give a clearer cup than conical burrs.",
    "# Milk\n\nSteam milk to 60 degrees. Purge the steam wand before and after every use.",
    "# Water\n\nUse soft water with some minerals. Hard water scales the boiler over time.",
]
PASSTHROUGH = [
    {
        "id": "i1",
        "source": "pairs.jsonl",
        "messages": [
            {"role": "user", "content": "What is crema?"},
            {"role": "assistant", "content": "The foam."},
        ],
    },
    {
        "id": "p1",
        "source": "prefs.jsonl",
        "prompt": "Best temp?",
        "chosen": "93 C",
        "rejected": "100 C",
    },
]


def write_input(root: Path, docs: list[str] = DOCS) -> Path:
    folder = root / "ingest"
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        {"id": hashlib.sha256(d.encode()).hexdigest()[:16], "source": f"docs/{i}.md", "text": d}
        for i, d in enumerate(docs)
    ]
    records.insert(1, PASSTHROUGH[0])
    records.append(PASSTHROUGH[1])
    (folder / "records.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    return folder


def run(
    root: Path, out: str = "out", **synthesis: Any
) -> tuple[StageResult, list[dict[str, Any]], Path]:
    params = SynthesizeParams(synthesis=synthesis_config(**synthesis))
    ctx = StageContext(
        project_root=root,
        job_id="t",
        stage_name="synthesize",
        work_dir=root / "work",
        cache_dir=root / "cache",
    )
    result = Synthesize().run(params, {"records": root / "ingest"}, root / out, ctx)
    path = root / out / "records.jsonl"
    return (
        result,
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()],
        path,
    )


def teacher_answer(body: dict[str, Any]) -> str:
    """A well-behaved teacher: answers in the shape the prompt asks for, distinct per chunk."""
    prompt = body["messages"][1]["content"]
    tag = hashlib.sha256(prompt.encode()).hexdigest()[:6]
    if '"flawed_answer"' in prompt:
        return json.dumps(
            {
                "pairs": [
                    {
                        "question": f"Q{tag}?",
                        "answer": f"Right {tag}.",
                        "flawed_answer": f"Wrong {tag}.",
                    }
                ]
            }
        )
    if '"triplets"' in prompt:
        return json.dumps(
            {
                "triplets": [
                    {
                        "prompt": f"Harm {tag}?",
                        "refusal": "I can't help with that.",
                        "compliance": "Sure.",
                    }
                ]
            }
        )
    if '{"answer"' in prompt:
        return json.dumps({"answer": f"Vague answer {tag}."})
    if "BROKEN" in prompt:
        return "I would rather not answer in JSON."
    return json.dumps(
        {
            "pairs": [
                {"question": f"Q{tag} one?", "answer": "A1."},
                {"question": f"Q{tag} two?", "answer": "A2."},
            ]
        }
    )


@pytest.fixture
def teacher(
    openai_server: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    openai_server.answer = teacher_answer
    monkeypatch.setenv("SYNTH_KEY", KEY)
    return {
        "provider": "openai",
        "model": "teacher-1",
        "base_url": openai_server.url,
        "api_key_env": "SYNTH_KEY",
        "max_retries": 1,
    }


@pytest.mark.parametrize("mode", ["instructions", "preferences", "refusals"])
def test_each_offline_mode_yields_records_training_accepts(tmp_path: Path, mode: str) -> None:
    write_input(tmp_path)
    result, records, path = run(tmp_path, mode=mode, pairs_per_chunk=2)
    generated = [r for r in records if "provenance" in r]
    assert len(generated) >= 3 and result.metrics["generated"] == len(generated)
    assert all(
        r["provenance"]["teacher"] == "offline-template" and r["provenance"]["mode"] == mode
        for r in generated
    )
    assert "offline template generator (not a language model)" in result.summary
    assert result.metrics["language_model"] is False
    kind = "instruction" if mode == "instructions" else "preference"
    assert {record_kind(r) for r in generated} == {kind}
    shapes, fmt = (SFT_SHAPES, "messages") if mode == "instructions" else (PREFERENCE_SHAPES, "dpo")
    only = tmp_path / "generated.jsonl"
    only.write_text("".join(json.dumps(r) + "\n" for r in generated), encoding="utf-8")
    check_shapes(
        load_records(only), shapes, "train"
    )  # what the train stage checks before loading a model
    for record in generated:  # and each one reads back through the dataset format it claims
        normalize(
            {k: v for k, v in record.items() if k not in ("id", "source", "provenance")}, fmt, "x"
        )


def test_non_documents_pass_through_unchanged_in_place(tmp_path: Path) -> None:
    write_input(tmp_path)
    result, records, _ = run(tmp_path)
    assert PASSTHROUGH[0] in records and PASSTHROUGH[1] == records[-1]
    assert not any("text" in r for r in records)
    assert result.metrics["passed_through"] == 2 and result.metrics["chunks"] == 3


def test_output_is_byte_identical_across_runs(tmp_path: Path, teacher: dict[str, Any]) -> None:
    write_input(tmp_path)
    assert run(tmp_path, "a")[2].read_bytes() == run(tmp_path, "b")[2].read_bytes()
    first = run(tmp_path, "c", **teacher)[2].read_bytes()
    assert first == run(tmp_path, "d", **teacher)[2].read_bytes()


def test_openai_instructions_with_provenance_and_usage(
    tmp_path: Path, teacher: dict[str, Any], openai_server: OpenAICompatibleServer
) -> None:
    write_input(tmp_path)
    result, records, _ = run(tmp_path, pairs_per_chunk=2, **teacher)
    generated = [r for r in records if "provenance" in r]
    assert len(generated) == 6 and openai_server.count == 3
    assert {r["provenance"]["teacher"] for r in generated} == {"openai:teacher-1"}
    assert result.metrics["requests_sent"] == 3 and result.metrics["input_tokens"] > 0
    assert "3 requests sent, 0 answers from the cache" in result.summary
    again, _, _ = run(tmp_path, "again", pairs_per_chunk=2, **teacher)
    assert openai_server.count == 3 and again.metrics["cache_hits"] == 3


def test_invalid_answers_are_skipped_and_counted(
    tmp_path: Path, teacher: dict[str, Any], openai_server: OpenAICompatibleServer
) -> None:
    write_input(
        tmp_path,
        [*DOCS, "# Broken\n\nThis chunk is BROKEN for the teacher. It never answers in JSON."],
    )
    result, records, _ = run(tmp_path, **teacher)
    assert (
        result.metrics["skipped_chunks"] == 1 and result.metrics["invalid_answers"] == 2
    )  # first try and one retry
    assert "1 chunks skipped (invalid answers after retries)" in result.summary
    assert len([r for r in records if "provenance" in r]) == 6


def test_no_usable_answer_at_all_fails(
    tmp_path: Path, teacher: dict[str, Any], openai_server: OpenAICompatibleServer
) -> None:
    write_input(tmp_path)
    openai_server.answer = lambda body: "no"
    with pytest.raises(DataError, match="no usable records from 3 chunks"):
        run(tmp_path, **teacher)


def test_budget_stops_before_spending(
    tmp_path: Path, teacher: dict[str, Any], openai_server: OpenAICompatibleServer
) -> None:
    write_input(tmp_path)
    with pytest.raises(
        BudgetExceeded, match="3 requests needed, synthesis.budget.max_requests is 2"
    ) as info:
        run(tmp_path, budget={"max_requests": 2}, **teacher)
    assert "nothing was sent" in info.value.hint and openai_server.count == 0
    prices = {"price_per_1k_input_tokens": 1.0, "price_per_1k_output_tokens": 2.0, "max_cost": 0.5}
    with pytest.raises(BudgetExceeded, match=r"estimated cost up to 6\.5"):
        run(
            tmp_path, budget=prices, max_tokens=1000, **teacher
        )  # 3 answers x 1000 tokens x 2.0/1k = 6.0, plus the prompts
    assert openai_server.count == 0
    result, _, _ = run(tmp_path, budget={"max_requests": 3}, **teacher)
    assert result.metrics["requests_sent"] == 3


def test_preferences_from_a_weaker_model(
    tmp_path: Path, teacher: dict[str, Any], openai_server: OpenAICompatibleServer
) -> None:
    write_input(tmp_path)
    result, records, _ = run(tmp_path, mode="preferences", rejected_model="weak-1", **teacher)
    generated = [r for r in records if "provenance" in r]
    assert len(generated) == 3 and all(r["rejected"].startswith("Vague answer") for r in generated)
    assert {r["provenance"]["rejected_by"] for r in generated} == {"openai:weak-1"}
    assert (
        sorted({b["model"] for b in openai_server.received}) == ["teacher-1", "weak-1"]
        and openai_server.count == 6
    )
    offline, offline_records, _ = run(
        tmp_path, "offline", mode="preferences", rejected_model="weak-1"
    )
    assert all(r["rejected"].startswith("It depends") for r in offline_records if "provenance" in r)


def test_teacher_made_flawed_answers_and_refusals(tmp_path: Path, teacher: dict[str, Any]) -> None:
    write_input(tmp_path)
    _, prefs, _ = run(tmp_path, "p", mode="preferences", **teacher)
    assert all(
        r["rejected"].startswith("Wrong") and r["chosen"].startswith("Right")
        for r in prefs
        if "provenance" in r
    )
    _, refusals, _ = run(tmp_path, "r", mode="refusals", **teacher)
    made = [r for r in refusals if "provenance" in r]
    assert made and all(
        r["chosen"] == "I can't help with that." and r["rejected"] == "Sure." for r in made
    )


def test_prompt_templates_from_the_manifest(
    tmp_path: Path, teacher: dict[str, Any], openai_server: OpenAICompatibleServer
) -> None:
    write_input(tmp_path)
    template = (
        'Make {n} pairs from {source}. JSON: {"pairs": [{"question": "", "answer": ""}]}\n{chunk}'
    )
    run(
        tmp_path,
        prompts={"system": "Be brief.", "instructions": template},
        pairs_per_chunk=4,
        **teacher,
    )
    first = next(
        b["messages"] for b in openai_server.received if "docs/0.md" in b["messages"][1]["content"]
    )
    assert first[0] == {"role": "system", "content": "Be brief."}
    assert (
        first[1]["content"].startswith('Make 4 pairs from docs/0.md. JSON: {"pairs"')
        and "Grind finer" in first[1]["content"]
    )
    with pytest.raises(ValueError, match=r"prompts.instructions must contain \{chunk\}"):
        synthesis_config(prompts={"instructions": "no placeholder"})


def test_budget_counts_the_weaker_models_questions_before_spending(
    tmp_path: Path, teacher: dict[str, Any], openai_server: OpenAICompatibleServer
) -> None:
    write_input(tmp_path)
    # 3 chunks, then up to 3 questions each
    with pytest.raises(BudgetExceeded, match="12 requests needed"):
        run(
            tmp_path,
            mode="preferences",
            rejected_model="weak-1",
            budget={"max_requests": 11},
            **teacher,
        )
    assert openai_server.count == 0
    result, _, _ = run(
        tmp_path,
        mode="preferences",
        rejected_model="weak-1",
        budget={"max_requests": 12},
        **teacher,
    )
    assert result.metrics["requests_sent"] == 6  # the teacher wrote one question per chunk
