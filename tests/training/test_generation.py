"""Prompts cut to their end: only what can survive the cut is tokenised, and the kept tokens are
the ones a full tokenisation would keep."""

from __future__ import annotations

from pathlib import Path

from opensem.training.generation import longest_token, prompt_ids, tail_ids


def test_a_huge_prompt_keeps_the_same_end_as_a_full_tokenisation(tiny_model_dir: Path) -> None:
    from opensem.training.methods.base import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir), "test")
    text = (
        " ".join(f"word{index % 97} grind{index % 13}, tamp." for index in range(50_000))
        + " How fine should espresso be?"
    )
    full = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    kept = tail_ids(text, tokenizer, 64)
    assert (
        len(kept) == 64 and kept[1:] == full[-63:]
    )  # the first kept token may be a piece of a word the cut split
    assert len(text) > 64 * longest_token(tokenizer) > 0
    short = tail_ids("How fine?", tokenizer, 64)
    assert short == list(tokenizer("How fine?")["input_ids"])
    assert (
        prompt_ids([{"role": "user", "content": text}], tokenizer, 32)[-5:]
        == prompt_ids([{"role": "user", "content": text[-2000:]}], tokenizer, 32)[-5:]
    )
