"""The local provider: a model folder answering in this process, with the shared cache and budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.evaluation.config import judge_config
from opensem.evaluation.judge import Judge
from opensem.forge.config import synthesis_config
from opensem.teachers import BudgetExceeded, ChatRequest, provider_from_config
from opensem.teachers.base import InvalidAnswer


def local(model: Path, cache: Path | None, **overrides: object):
    settings = {
        "provider": "local",
        "model": str(model),
        "max_tokens": 8,
        "temperature": 0.0,
        "batch_size": 2,
        "max_retries": 1,
        **overrides,
    }
    return provider_from_config(synthesis_config(**settings), cache)


def asks(count: int) -> list[ChatRequest]:
    return [
        ChatRequest(messages=[{"role": "user", "content": f"question number {i}"}])
        for i in range(count)
    ]


def test_answers_are_generated_in_order_then_replayed_from_the_cache(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    first = local(tiny_model_dir, tmp_path).complete_many(asks(3))
    assert [r.requests for r in first] == [1, 1, 1] and all(isinstance(r.text, str) for r in first)
    again = local(tiny_model_dir, tmp_path).complete_many(asks(3))
    assert [r.text for r in again] == [r.text for r in first]
    assert [(r.requests, r.cache_hits) for r in again] == [(0, 1)] * 3


def test_greedy_answers_do_not_depend_on_the_batch(tiny_model_dir: Path) -> None:
    together = local(tiny_model_dir, None, batch_size=3).complete_many(asks(3))
    alone = [local(tiny_model_dir, None).complete_many([request])[0] for request in asks(3)]
    assert [r.text for r in together] == [r.text for r in alone]


def test_a_retrained_folder_is_asked_again(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from opensem.training.tiny import make_tiny_model

    local(tiny_model_dir, tmp_path).complete_many(asks(1))
    other = make_tiny_model(tmp_path / "other", seed=7)
    shutil.copytree(tiny_model_dir, tmp_path / "same")
    assert (
        local(tmp_path / "same", tmp_path).complete_many(asks(1))[0].cache_hits == 1
    )  # same bytes elsewhere: same answers
    assert local(other, tmp_path).complete_many(asks(1))[0].requests == 1


def test_the_budget_counts_generations(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BudgetExceeded, match="request budget reached"):
        local(tiny_model_dir, tmp_path).complete_many(asks(3), request_limit=2)


def test_invalid_answers_are_asked_again_then_counted(tiny_model_dir: Path) -> None:
    def never(text: str) -> str:
        raise InvalidAnswer("not what was asked")

    result = local(tiny_model_dir, None, max_retries=2).complete_many(asks(1), validate=never)[0]
    assert (result.ok, result.answers, result.invalid, result.requests) == (False, 3, 3, 3)


def test_a_folder_relative_to_the_project(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "models" / "teacher")
    config = synthesis_config(provider="local", model="./models/teacher", max_tokens=4)
    provider = provider_from_config(config, None, project_root=tmp_path)
    assert provider.complete_many(asks(1))[0].ok


def test_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    from opensem.teachers import TeacherError

    with pytest.raises(TeacherError, match="cannot load") as caught:
        local(tmp_path / "nothing-here", None).complete_many(asks(1))
    assert "./models" in caught.value.hint


def test_a_local_judge_says_it_is_weak_and_counts_invalid_verdicts(tiny_model_dir: Path) -> None:
    config = judge_config(provider="local", model=str(tiny_model_dir), max_tokens=8, max_retries=0)
    judge = Judge(config, None)
    assert "weak judge" in judge.describe()
    assert judge([("What grind?", "Fine.", "Fine.")]) == [None]  # a random model writes no verdict
    assert judge.stats["invalid"] == 1


def test_a_release_answers_as_its_adapter_on_its_shipped_base(releases: dict[str, Path]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from opensem.core.stage import silent_progress
    from opensem.training.generation import GenerationSettings, generate_answers

    release = releases["alpha"]
    answer = local(release, None).complete_many(asks(1))[0].text
    base = AutoModelForCausalLM.from_pretrained(
        release / "base_model" / "model", dtype=torch.float32
    )
    merged = PeftModel.from_pretrained(base, release / "adapter").merge_and_unload()
    settings = GenerationSettings(
        max_new_tokens=8, temperature=0.0, seed=0, batch_size=1, max_seq_length=2048
    )
    expected = generate_answers(
        merged,
        AutoTokenizer.from_pretrained(release / "adapter"),
        [asks(1)[0].messages],
        settings,
        silent_progress("", None),
    )
    assert answer == expected[0]
