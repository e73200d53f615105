"""A server on 127.0.0.1 serving two adapter releases of one tiny base (alpha, beta), once per module."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.serving.releases import KEY

if TYPE_CHECKING:
    from opensem.serving.server import Server


@pytest.fixture(scope="session", autouse=True)
def api_key_variable() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENSEM_API_KEY", KEY)
        yield


def start_server(sources: list[str], cache_dir: Path, **settings: object) -> Server:
    from opensem.serving.config import ServeConfig
    from opensem.serving.server import Server

    server = Server(
        sources, ServeConfig(port=0, **settings), cache_dir, logging.getLogger("opensem.serve")
    )
    server.start()
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def server(releases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """alpha and beta on one base; the base URL is server.url."""
    server = start_server(
        [str(releases["alpha"]), str(releases["beta"])], tmp_path_factory.mktemp("cache")
    )
    yield server
    server.close()
