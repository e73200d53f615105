"""One sequence's decoding inside a batch: its own sampling, seed and stop strings, and its text.

Each request in a batch samples with its own temperature, top-p and seeded generator, so a
request's answer depends on its seed and its prompt, not on which others it was batched with.
Text is streamed in deltas that never split a character and never show the start of a stop
string that may still complete.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sampler:
    temperature: float
    top_p: float
    seed: int | None
    generator: Any = None

    def __post_init__(self) -> None:
        import torch

        self.generator = torch.Generator().manual_seed(
            self.seed if self.seed is not None else random.getrandbits(63)
        )

    def pick(self, logits: Any) -> int:
        """The next token id from one row of logits."""
        import torch

        if self.temperature <= 0:
            return int(logits.argmax())
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            ordered, order = probs.sort(descending=True)
            keep = (
                ordered.cumsum(-1) - ordered < self.top_p
            )  # the smallest set whose mass reaches top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
        return int(torch.multinomial(probs / probs.sum(), 1, generator=self.generator))


@dataclass
class TextTracker:
    """The decoded text of a sequence so far, what was already streamed, and stop-string handling."""

    tokenizer: Any
    stop: tuple[str, ...]
    ids: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0  # characters already streamed
    stopped: bool = False

    def add(self, token: int) -> str:
        """Append a token; returns the text that can be streamed now (possibly empty)."""
        self.ids.append(token)
        self.text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        for stop in self.stop:
            at = self.text.find(stop)
            if stop and at >= 0:
                self.text, self.stopped = self.text[:at], True
        safe = len(self.text)
        if not self.stopped:
            if self.text.endswith("\ufffd"):  # an incomplete character: wait for its other bytes
                safe = len(self.text.rstrip("\ufffd"))
            for stop in self.stop:  # a stop string's start may still complete: hold it back
                for size in range(min(len(stop) - 1, safe), 0, -1):
                    if self.text[:safe].endswith(stop[:size]):
                        safe -= size
                        break
        delta, self.sent = self.text[self.sent : safe], max(self.sent, safe)
        return delta

    def rest(self) -> str:
        """Whatever was held back, once the sequence has finished."""
        delta, self.sent = self.text[self.sent :], len(self.text)
        return delta
