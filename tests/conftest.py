"""Fixtures shared across the test tree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from tests.servers.openai_compatible import OpenAICompatibleServer


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with its tokenizer, built once per test session (a few seconds, offline)."""
    from opensem.training.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Adapters of the tiny model: a and b (rank 4), wide (rank 8), dora (rank 4, DoRA)."""
    from tests.adapters import make_adapter

    root = tmp_path_factory.mktemp("adapters")
    return {
        "a": make_adapter(tiny_model_dir, root / "a" / "adapter", seed=1),
        "b": make_adapter(tiny_model_dir, root / "b" / "adapter", seed=2),
        "wide": make_adapter(tiny_model_dir, root / "wide" / "adapter", rank=8, seed=3),
        "dora": make_adapter(tiny_model_dir, root / "dora" / "adapter", seed=4, dora=True),
    }


@pytest.fixture
def openai_server() -> "Iterator[OpenAICompatibleServer]":
    """A scriptable OpenAI-compatible HTTP server on 127.0.0.1 (tests/servers/openai_compatible.py)."""
    from tests.servers.openai_compatible import OpenAICompatibleServer

    with OpenAICompatibleServer() as server:
        yield server
