"""Questions encoded by ONNX Runtime: the same vectors as sentence-transformers, about 3x sooner.

One short question through MiniLM costs torch about 15 ms on 2 CPU cores, most of it per-operator
overhead; ONNX Runtime runs the same graph in about 6 ms. The model is exported once per embedder
digest (transformer, mean pooling and normalisation in one graph), checked against torch on probe
sentences, and kept in a cache folder. Anything else (another pooling, no onnxruntime, an export
that fails or disagrees) keeps the torch encoder and logs why.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from opensem.curate.embedder import Embedder

log = logging.getLogger(__name__)
PROBES = ["How hard should I tamp the puck?", "Descale the boiler every two months."]
TOLERANCE = 1e-4  # largest difference from torch's vector a component may show


def user_cache() -> Path:
    """The per-user cache folder, for processes that have no project (a server of a release)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "opensem"


class OnnxQueries:
    """An ONNX Runtime session over an exported sentence-transformers model, with its tokenizer."""

    def __init__(self, path: Path, tokenizer: Any, max_length: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.names = {i.name for i in self.session.get_inputs()}
        self.tokenizer, self.max_length = tokenizer, max_length

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of texts, float32."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        feed = {name: np.asarray(batch[name], dtype=np.int64) for name in self.names}
        (vectors,) = self.session.run(None, feed)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _pipeline_is_mean_normalized(model: Any) -> bool:
    """Whether the model is a transformer, mean pooling and normalisation, nothing more (by the
    modules' class names and the pooling's config, which sentence-transformers 3 to 6 share)."""
    names = [type(module).__name__ for module in model]
    if names != ["Transformer", "Pooling", "Normalize"]:
        return False
    pooling = model[1].get_config_dict()
    modes = {key for key, on in pooling.items() if key.startswith("pooling_mode_") and on is True}
    return pooling.get("pooling_mode") == "mean" or modes == {"pooling_mode_mean_tokens"}


def _export(model: Any, target: Path) -> None:
    """Write the transformer with mean pooling and normalisation as one ONNX graph."""
    import torch

    transformer = model[0].auto_model.eval()
    inputs = list(model[0].tokenizer.model_input_names)

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            named = dict(zip(inputs, tensors, strict=True))
            hidden = self.transformer(**named).last_hidden_state
            mask = named["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    sample = model[0].tokenizer(PROBES, padding=True, return_tensors="pt")
    partial = target.with_suffix(".partial")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it fixes
        torch.onnx.export(
            Pooled(),
            tuple(sample[name] for name in inputs),
            str(partial),
            input_names=inputs,
            output_names=["embedding"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in inputs},
            opset_version=17,
            dynamo=False,
        )
    os.replace(partial, target)


def onnx_queries(embedder: Embedder, cache: Path) -> OnnxQueries | None:
    """The ONNX encoder of an embedder, exported into cache on first use; None (logged) where
    it cannot match torch's vectors."""
    model = embedder.load()
    if not _pipeline_is_mean_normalized(model):
        log.info("questions are encoded with torch: %s is not mean-pooled", embedder.ref.name)
        return None
    target = cache / "onnx" / f"{embedder.ref.digest[:32]}.onnx"
    try:
        import onnxruntime  # noqa: F401

        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            _export(model, target)
        fast = OnnxQueries(target, model.tokenizer, int(model.max_seq_length))
        exact = model.encode(PROBES, normalize_embeddings=True, show_progress_bar=False)
        gap = float(np.abs(fast.encode(PROBES) - exact).max())
    except Exception as exc:  # an optional speed-up: any failure keeps the torch path
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        log.info("questions are encoded with torch: no ONNX model (%s)", reason)
        return None
    if gap > TOLERANCE:
        log.info("questions are encoded with torch: ONNX vectors differ by %.2g", gap)
        target.unlink(missing_ok=True)
        return None
    return fast
