"""An n-gram index of reference texts (test split, golden set) to find them inside training records.

Words are case-folded runs of letters and digits (opensem.curate.text.words). A reference of at
least n words contributes its n-grams; a shorter one (a golden question of ten words, with n = 13)
contributes itself whole when it has at least half of n words, so a verbatim copy is still caught
while a three-word phrase is not taken for a leak. Training texts are hashed in one vectorized
pass per gram length (a 64-bit polynomial hash over word ids); every hash hit is confirmed word
by word, so a collision can never flag a record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from opensem.curate.text import words

_BASE = np.uint64(1_000_003)


@dataclass(frozen=True)
class Reference:
    """A text that must not leak into training: a golden item or a test record."""

    set: str  # "golden" or "test"
    id: str
    text: str  # everything n-grams are taken from (question and answer)
    question: str = ""  # what a paraphrase is compared to


@dataclass(frozen=True)
class Overlap:
    """The reference a training text overlaps most, by the share of the reference's grams it contains."""

    reference: int  # index into the index's references
    shared: int  # distinct reference grams found in the training text
    containment: float  # shared / grams of the reference
    gram: str  # one shared gram, for the report


def _hash(ids: np.ndarray, length: int) -> np.ndarray:
    """Hash of every window of `length` ids (wrapping uint64 arithmetic)."""
    count = len(ids) - length + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    values = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(length):
            values = values * _BASE + ids[offset : offset + count]
    return values


@dataclass
class NgramIndex:
    references: list[Reference]
    n: int = 13
    vocabulary: dict[str, int] = field(default_factory=dict)
    grams: dict[tuple[int, ...], list[int]] = field(
        default_factory=dict
    )  # gram -> references holding it
    gram_counts: list[int] = field(default_factory=list)  # distinct grams per reference
    unchecked: int = 0  # references too short to check

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        shortest = (self.n + 1) // 2
        for index, reference in enumerate(self.references):
            ids = [
                self.vocabulary.setdefault(word, len(self.vocabulary) + 1)
                for word in words(reference.text)
            ]
            if len(ids) >= self.n:
                own = {tuple(ids[i : i + self.n]) for i in range(len(ids) - self.n + 1)}
            elif len(ids) >= shortest:
                own = {tuple(ids)}
            else:
                own = set()
                self.unchecked += 1
            for gram in own:
                self.grams.setdefault(gram, []).append(index)
            self.gram_counts.append(len(own))
        self._by_length: dict[int, dict[int, list[tuple[int, ...]]]] = {}
        for gram in self.grams:
            key = int(_hash(np.array(gram, dtype=np.uint64), len(gram))[0])
            self._by_length.setdefault(len(gram), {}).setdefault(key, []).append(gram)

    def overlaps(self, texts: list[str]) -> list[Overlap | None]:
        """For each text, its largest overlap with a reference (None when it shares no gram)."""
        vocab = self.vocabulary
        encoded = [
            np.array([vocab.get(word, 0) for word in words(text)], dtype=np.uint64)
            for text in texts
        ]
        starts = np.cumsum([0] + [len(ids) for ids in encoded])
        flat = np.concatenate(encoded) if encoded else np.zeros(0, dtype=np.uint64)
        found: list[dict[int, dict[tuple[int, ...], int]]] = [
            {} for _ in texts
        ]  # record -> reference -> gram -> first position
        for length, table in sorted(self._by_length.items()):
            hashes = _hash(flat, length)
            keys = np.fromiter(table, dtype=np.uint64, count=len(table))
            for position in np.flatnonzero(np.isin(hashes, keys)).tolist():
                record = int(np.searchsorted(starts, position, side="right")) - 1
                if position + length > starts[record + 1]:
                    continue  # the window runs into the next text
                window = tuple(int(v) for v in flat[position : position + length])
                for gram in table[int(hashes[position])]:
                    if gram == window:
                        for reference in self.grams[gram]:
                            found[record].setdefault(reference, {}).setdefault(gram, position)
        words_of = {index: word for word, index in vocab.items()}
        return [self._best(hits, words_of) for hits in found]

    def _best(
        self, hits: dict[int, dict[tuple[int, ...], int]], words_of: dict[int, str]
    ) -> Overlap | None:
        if not hits:
            return None
        ranked = sorted(
            hits.items(), key=lambda item: (-len(item[1]) / self.gram_counts[item[0]], item[0])
        )
        reference, grams = ranked[0]
        gram = min(
            grams, key=lambda g: (grams[g], len(g))
        )  # the first shared words in the training text
        return Overlap(
            reference=reference,
            shared=len(grams),
            containment=len(grams) / self.gram_counts[reference],
            gram=" ".join(words_of[i] for i in gram),
        )
