"""Answers from a causal LM: greedy by default, seeded when sampling, batched with left padding.

The prompt is rendered with the tokenizer's chat template and a generation prompt, exactly as a
user of the published adapter would call it; a model without a chat template gets the turns'
text, one paragraph each. Sampling reseeds per batch, so an answer depends only on the seed and
its batch, never on what was generated before it.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opensem.core.stage import Progress


@dataclass(frozen=True)
class GenerationSettings:
    """How answers are generated; the values come from the manifest (opensem.evaluation.params)."""

    max_new_tokens: int
    temperature: float  # 0 means greedy decoding
    seed: int
    batch_size: int
    max_seq_length: (
        int  # longer prompts keep their end (the question); scored sequences their start
    )


def prompt_ids(messages: Sequence[dict[str, str]], tokenizer: Any, max_tokens: int) -> list[int]:
    """Token ids of a chat prompt ending where the assistant's answer begins (its last max_tokens)."""
    if getattr(tokenizer, "chat_template", None):
        text = str(
            tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
        )
    else:
        text = "\n\n".join(message["content"] for message in messages) + "\n\n"
    bos = tokenizer.bos_token
    return tail_ids(text, tokenizer, max_tokens, special=not (bos and text.startswith(bos)))


def tail_ids(text: str, tokenizer: Any, max_tokens: int, special: bool = True) -> list[int]:
    """The last max_tokens token ids of text. Only the end that can survive the cut is tokenised (no
    token is longer than the tokenizer's longest entry), so a huge prompt costs what a full one does."""
    bound = max_tokens * longest_token(tokenizer)
    if len(text) > bound:
        text, special = (
            text[-bound:],
            False,
        )  # the start is cut off, and a start-of-text token with it
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])[-max_tokens:]


_LONGEST: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def longest_token(tokenizer: Any) -> int:
    """Characters in the tokenizer's longest vocabulary entry (at least 1), computed once per tokenizer."""
    if tokenizer not in _LONGEST:
        _LONGEST[tokenizer] = max((len(token) for token in tokenizer.get_vocab()), default=1) or 1
    return _LONGEST[tokenizer]


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token that ends an answer: the tokenizer's EOS and whatever the model's generation
    config adds (instruct models often list an end-of-turn token beside end-of-text)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])]
    return sorted({int(i) for i in ids if i is not None})


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[dict[str, str]]],
    settings: GenerationSettings,
    bar: Progress,
) -> list[str]:
    """One answer per prompt, in order; special tokens and surrounding whitespace removed."""
    import torch
    from transformers import GenerationConfig

    if not prompts:
        return []
    model.eval()
    device = next(model.parameters()).device
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    sampling = settings.temperature > 0
    config = GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        do_sample=sampling,
        temperature=settings.temperature if sampling else None,
        top_p=None,
        top_k=None,
        pad_token_id=pad_id,
        eos_token_id=stop_token_ids(model, tokenizer),
        bos_token_id=tokenizer.bos_token_id,
    )
    encoded = [prompt_ids(messages, tokenizer, settings.max_seq_length) for messages in prompts]
    answers: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(encoded), settings.batch_size):
            batch = encoded[start : start + settings.batch_size]
            width = max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                mask[row, width - len(ids) :] = 1
            if sampling:
                torch.manual_seed(settings.seed + start)
            output = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                generation_config=config,
            )
            for row in output[:, width:].cpu().tolist():
                answers.append(tokenizer.decode(row, skip_special_tokens=True).strip())
            bar.advance(len(batch))
    return answers
