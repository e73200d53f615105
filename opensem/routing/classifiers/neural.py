"""The neural classifier: all-MiniLM-L6-v2 embeddings of what each expert knows.

Each expert is described by reference texts: its description, its domains, its example queries,
the questions of its datasets and the labelled queries it was trained on. (Sentences of its
documents were tried too: being less like questions, they let more unrelated queries in.) A query's
similarity to an expert is its cosine similarity to the nearest of them; confidence is a softmax
over the experts' similarities at a temperature, or, once `train` has fitted a head (multinomial
logistic regression on the frozen embeddings, classes weighted equally, a thousand full-batch
steps, well under a second), the head's probability.

"None of these" is a class of its own: general questions bundled with opensem
(`general_queries.txt`) are learned beside the experts, so an unrelated query lands there instead
of on the nearest expert. Where that class wins, below the threshold, or further than
min_similarity from every expert, no expert is named.

Reference embeddings go through the embedding cache on disk (keyed by the model's digest); query
embeddings are kept in memory for repeated queries.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from opensem.curate.embedder import DEFAULT_MODEL
from opensem.errors import Location, UsageError
from opensem.routing.classifiers import CLASSIFIERS
from opensem.routing.classifiers.base import Decision, decide
from opensem.settings.fields import Section

if TYPE_CHECKING:
    from opensem.routing.registry import Expert

QUERY_CACHE = 10_000
GENERAL = "(general)"  # the "none of these" class


class NeuralOptions(Section):
    type: Literal["neural"] = "neural"
    model: str = Field(
        DEFAULT_MODEL,
        description="Sentence-transformers model: the bundled all-MiniLM-L6-v2, a hub id or a local folder.",
    )
    threshold: float = Field(
        0.35,
        ge=0,
        le=1,
        description=(
            "Confidence below which the neural classifier names no expert (the 'none of these' "
            "class rejects most unrelated queries first)."
        ),
    )
    min_similarity: float = Field(
        0.2,
        ge=-1,
        le=1,
        description="A query less similar than this to every expert's references gets no expert (out of domain).",
    )
    temperature: float = Field(
        0.05, gt=0, description="Softmax temperature over similarities, before a head is trained."
    )
    epochs: int = Field(
        1000,
        gt=0,
        le=100_000,
        description="Full-batch gradient steps when training the head on labelled queries.",
    )
    reject_general: bool = Field(
        True,
        description=(
            "Learn opensem's bundled general questions as a 'none of these' class, so unrelated "
            "queries get no expert."
        ),
    )
    quantize: bool = Field(
        True,
        description=(
            "On a CPU, embed with int8 dynamic quantization of the encoder's linear layers (about "
            "2x faster per query)."
        ),
    )


@CLASSIFIERS.register
class NeuralClassifier:
    name = "neural"
    Options = NeuralOptions

    def __init__(
        self, options: NeuralOptions, experts: list[Expert], cache_dir: Path | None = None
    ) -> None:
        from opensem.core.digests import DigestCache
        from opensem.curate.embedder import Embedder, resolve_model

        self.options, self.cache_dir = options, cache_dir
        local = Path(options.model) if Path(options.model).is_dir() else None
        self.embedder = Embedder(
            resolve_model(options.model, local, DigestCache(None)), batch_size=64
        )
        self.cache_key = self.embedder.ref.digest
        self.quantized = options.quantize and not _cuda()
        if self.quantized:
            self.embedder.quantize()
            self.cache_key += "-int8"
        self.references: dict[str, list[str]] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self.priorities: dict[str, int] = {}
        self.head: tuple[np.ndarray, np.ndarray, list[str]] | None = (
            None  # weights, bias, expert order
        )
        self.queries: OrderedDict[str, np.ndarray] = OrderedDict()
        if options.reject_general:
            self.general = self._embed_references(general_queries())
        for expert in experts:
            self.add_expert(expert)

    def _embed_references(self, texts: list[str]) -> np.ndarray:
        if self.cache_dir is None:
            return self.embedder.encode(texts)
        from opensem.curate.cache import EmbeddingCache
        from opensem.curate.embed import embed_texts

        with EmbeddingCache(self.cache_dir / "embeddings", self.cache_key) as cache:
            return embed_texts(texts, self.embedder, cache)[0]

    def add_expert(self, expert: Expert, extra: list[str] | None = None) -> None:
        """Embed an expert's description, golden questions and extra questions as its references."""
        from opensem.data.corpus import user_turns

        texts = (
            [t for t in (expert.description, "; ".join(expert.domains)) if t.strip()]
            + list(expert.examples)
            + list(extra or [])
        )
        texts += [turn for path in expert.questions for turn in user_turns(Path(path))]
        if not texts:
            raise UsageError(
                f"expert {expert.name!r} has no description, domains or examples to compare queries with",
                Location(key=f"experts.{expert.name}"),
                "add a description or example queries (the manifest's `expert:` section)",
            )
        self.references[expert.name] = texts
        self.vectors[expert.name] = self._embed_references(texts)
        self.priorities[expert.name] = expert.priority
        self.head = None  # a head fitted without this expert no longer fits

    def remove_expert(self, name: str) -> None:
        """Forget an expert's references."""
        for table in (self.references, self.vectors, self.priorities):
            table.pop(name, None)
        self.head = None

    def experts(self) -> list[str]:
        """Names of the experts it routes to."""
        return list(self.vectors)

    def embed(self, queries: list[str]) -> np.ndarray:
        """Embeddings of queries (cached: a router sees the same question often)."""
        missing = list(dict.fromkeys(q for q in queries if q not in self.queries))
        if missing:
            # An int8 encoder scales activations per batch, so a query's vector would depend on its
            # neighbours: quantized, each query is encoded alone and routes the same in any batch.
            vectors = (
                [self.embedder.encode([query])[0] for query in missing]
                if self.quantized
                else self.embedder.encode(missing)
            )
            for query, vector in zip(missing, vectors):
                self.queries[query] = vector
            while len(self.queries) > QUERY_CACHE:
                self.queries.popitem(last=False)
        return (
            np.stack([self.queries[q] for q in queries])
            if queries
            else np.zeros((0, 0), np.float32)
        )

    def train(self, labelled: list[tuple[str, str]]) -> None:
        """Fit the head on labelled (query, expert) pairs and every expert's references; the labelled
        queries also become references of their expert."""
        unknown = sorted({name for _, name in labelled} - set(self.vectors))
        if unknown:
            raise UsageError(
                f"labelled queries name unknown experts: {', '.join(unknown)}",
                hint=f"experts: {', '.join(self.vectors)}",
            )
        for name in self.vectors:
            queries = [q for q, label in labelled if label == name]
            if queries:
                self.references[name] = [*self.references[name], *queries]
                self.vectors[name] = np.concatenate([self.vectors[name], self.embed(queries)])
        classes = self._classes()
        features = np.concatenate([classes[name] for name in classes])
        targets = np.concatenate(
            [np.full(len(classes[name]), index) for index, name in enumerate(classes)]
        )
        self.head = (
            *_fit_softmax(features, targets, len(classes), self.options.epochs),
            list(classes),
        )

    def _classes(self) -> dict[str, np.ndarray]:
        """Reference vectors of every class: the experts, and the general questions when they are rejected."""
        return {**self.vectors, **({GENERAL: self.general} if self.options.reject_general else {})}

    def _probabilities(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        classes = self._classes()
        order = list(classes)
        similarity = np.stack([(vectors @ classes[name].T).max(axis=1) for name in order], axis=1)
        if self.head is not None:
            weights, bias, order = self.head
            logits = vectors @ weights + bias
        else:
            logits = similarity / self.options.temperature
        logits = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return (
            probabilities / probabilities.sum(axis=1, keepdims=True),
            similarity[:, : len(self.vectors)],
            order,
        )

    def classify_batch(self, queries: list[str]) -> list[Decision]:
        """The head's choice per query; below the threshold, or "none of these", no expert."""
        if not queries or not self.vectors:
            return [Decision(None, 0.0, {}, None, self.name) for _ in queries]
        probabilities, similarity, order = self._probabilities(self.embed(queries))
        decisions = []
        for row in range(len(queries)):
            scores = {
                name: float(probabilities[row, index])
                for index, name in enumerate(order)
                if name != GENERAL
            }
            decision = decide(scores, self.options.threshold, self.priorities, self.name)
            general = float(probabilities[row, order.index(GENERAL)]) if GENERAL in order else 0.0
            # Unlike what any expert knows
            if (
                similarity[row].max() < self.options.min_similarity
                or general >= decision.confidence
            ):
                decision = Decision(
                    None, decision.confidence, scores, decision.runner_up, self.name
                )
            decisions.append(decision)
        return decisions

    def classify(self, query: str) -> Decision:
        """The expert for one query, or none."""
        return self.classify_batch([query])[0]


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def general_queries() -> list[str]:
    """The bundled general questions (the "none of these" class)."""
    text = (Path(__file__).parent.parent / "general_queries.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _fit_softmax(
    features: np.ndarray, targets: np.ndarray, classes: int, epochs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent with a little L2, every class
    weighing the same whatever its number of references; features are unit vectors, so a step of 2
    is stable (the loss's curvature is at most 1/2 per unit feature)."""
    x = features.astype(np.float64)
    onehot = np.eye(classes)[targets]
    counts = np.bincount(targets, minlength=classes)
    sample_weights = (1.0 / np.maximum(counts[targets], 1) / classes)[:, None]
    weights, bias = np.zeros((x.shape[1], classes)), np.zeros(classes)
    for _ in range(epochs):
        logits = x @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        error = (p - onehot) * sample_weights
        weights -= 2.0 * (x.T @ error + 1e-4 * weights)
        bias -= 2.0 * error.sum(axis=0)
    return weights.astype(np.float32), bias.astype(np.float32)
