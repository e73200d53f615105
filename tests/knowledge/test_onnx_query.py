"""Questions encoded by ONNX Runtime give torch's vectors, or torch keeps the work and says why."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from opensem.core.digests import DigestCache
from opensem.curate.embedder import Embedder, bundled_model_dir, resolve_model
from opensem.knowledge import onnx_query
from opensem.knowledge.onnx_query import onnx_queries

TEXTS = ["Why is my shot sour?", "descale", "How long should beans rest after the roast date?"]


def _embedder(path: Path | None = None) -> Embedder:
    return Embedder(resolve_model("all-MiniLM-L6-v2", path, DigestCache(None)))


def test_onnx_vectors_match_torch_and_the_export_is_kept(tmp_path: Path) -> None:
    embedder = _embedder()
    fast = onnx_queries(embedder, tmp_path)
    assert fast is not None
    exact = embedder.encode(TEXTS)
    assert np.abs(fast.encode(TEXTS) - exact).max() < 1e-5  # a padded batch too
    assert np.abs(fast.encode(TEXTS[:1])[0] - exact[0]).max() < 1e-5
    (exported,) = (tmp_path / "onnx").glob("*.onnx")
    made = exported.stat().st_mtime_ns
    assert onnx_queries(embedder, tmp_path) is not None
    assert exported.stat().st_mtime_ns == made  # exported once per model digest


def test_another_pooling_keeps_torch_and_logs_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "cls-model"
    shutil.copytree(bundled_model_dir(), copy, ignore=shutil.ignore_patterns("*.safetensors"))
    (copy / "model.safetensors").symlink_to(bundled_model_dir() / "model.safetensors")
    config = json.loads((copy / "1_Pooling" / "config.json").read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (copy / "1_Pooling" / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.INFO, logger=onnx_query.__name__):
        assert onnx_queries(_embedder(copy), tmp_path) is None
    assert "not mean-pooled" in caplog.text
    assert not (tmp_path / "onnx").exists()


def test_a_failed_export_keeps_torch_and_logs_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(model: object, target: Path) -> None:
        raise RuntimeError("exporter unavailable\nsecond line")

    monkeypatch.setattr(onnx_query, "_export", broken)
    with caplog.at_level(logging.INFO, logger=onnx_query.__name__):
        assert onnx_queries(_embedder(), tmp_path) is None
    assert "no ONNX model (RuntimeError: exporter unavailable)" in caplog.text
