"""Fixtures shared across the test tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.servers.openai_compatible import OpenAICompatibleServer
    from tests.servers.s3 import RestartableS3


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


@pytest.fixture(scope="session")
def releases(
    adapters: dict[str, Path], tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Two release folders as `opensem build` publishes them: alpha (adapter a) and beta (adapter b) on
    the tiny base."""
    from tests.serving.releases import release_folder

    root = tmp_path_factory.mktemp("releases")
    return {
        name: release_folder(root / name, adapters[key], tiny_model_dir, name)
        for name, key in (("alpha", "a"), ("beta", "b"))
    }


@pytest.fixture
def openai_server() -> Iterator[OpenAICompatibleServer]:
    """A scriptable OpenAI-compatible HTTP server on 127.0.0.1 (tests/servers/openai_compatible.py)."""
    from tests.servers.openai_compatible import OpenAICompatibleServer

    with OpenAICompatibleServer() as server:
        yield server


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    """An S3 bucket `models` on moto's server at 127.0.0.1, reached through s3fs; yields s3://models/prod."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    # fsspec reads FSSPEC_* variables once, at import; its config dict is what s3:// URLs consult.
    import boto3
    import fsspec.config
    from s3fs import S3FileSystem

    patch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint})
    S3FileSystem.clear_instance_cache()

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket="models"
    )
    yield "s3://models/prod"
    patch.undo()
    S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture
def stoppable_s3() -> Iterator[RestartableS3]:
    """An S3 bucket on a moto server at 127.0.0.1 that the test may stop and start again, at
    `.url`; s3:// URLs reach it through s3fs (tests/servers/s3.py). moto keeps buckets per process,
    so each test gets a bucket of its own."""
    import boto3
    import fsspec.config
    from s3fs import S3FileSystem

    from tests.servers.s3 import RestartableS3

    server = RestartableS3()
    server.start()
    patch = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        patch.setenv(key, value)
    patch.setitem(fsspec.config.conf, "s3", server.filesystem_options())
    S3FileSystem.clear_instance_cache()
    bucket = f"faults-{server.port}"
    boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    server.url = f"s3://{bucket}/prod"
    yield server
    patch.undo()
    S3FileSystem.clear_instance_cache()
    server.close()
