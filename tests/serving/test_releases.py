"""What a source names: parsing, and releases pulled from S3 (moto's server through s3fs) into the
cache, reused while their digest holds and pulled again when a cached file was altered."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.errors import UsageError
from opensem.serving.releases import parse_source, resolve
from tests.serving.releases import publish


def test_sources_as_written_on_the_command_line() -> None:
    assert parse_source("manifests/houseplants.yaml") == (
        None,
        "manifests/houseplants.yaml",
        None,
        False,
    )
    assert parse_source("plants=s3://bucket/registry/houseplants@v2#folded") == (
        "plants",
        "s3://bucket/registry/houseplants",
        "v2",
        True,
    )
    assert parse_source("build/registry/bike-repair@v0-abc") == (
        None,
        "build/registry/bike-repair",
        "v0-abc",
        False,
    )
    with pytest.raises(UsageError, match="cannot read the release source"):
        parse_source("registry/expert#quantized")


def test_a_release_from_s3_is_pulled_checked_and_reused(
    s3_url: str, releases: dict[str, Path], tmp_path: Path
) -> None:
    publish(releases["alpha"], s3_url, "plants", "v1", "a" * 64)
    publish(releases["beta"], s3_url, "plants", "v2", "b" * 64)
    cache = tmp_path / "cache"
    latest = resolve(f"{s3_url}/plants", cache)
    assert (latest.name, latest.tag, latest.lot, latest.kind) == (
        "plants",
        "v2",
        "b" * 64,
        "adapter",
    )
    assert latest.artifact == cache / "plants" / "v2" / "adapter" and latest.base == str(
        cache / "plants" / "v2" / "base_model" / "model"
    )
    weights = latest.artifact / "adapter_model.safetensors"
    assert (
        weights.read_bytes()
        == (releases["beta"] / "adapter" / "adapter_model.safetensors").read_bytes()
    )
    pulled_at = weights.stat().st_mtime_ns
    assert (
        resolve(f"{s3_url}/plants@v2", cache).artifact == latest.artifact
        and weights.stat().st_mtime_ns == pulled_at
    )  # reused
    weights.write_bytes(b"altered")
    resolve(f"{s3_url}/plants@v2", cache)  # the digest no longer holds: pulled again
    assert (
        weights.read_bytes()
        == (releases["beta"] / "adapter" / "adapter_model.safetensors").read_bytes()
    )
    older = resolve(f"old={s3_url}/plants@v1", cache)
    assert (older.name, older.lot) == ("old", "a" * 64)
    with pytest.raises(UsageError, match="no release 'v3' is published here") as missing:
        resolve(f"{s3_url}/plants@v3", cache)
    assert "v1, v2" in missing.value.hint
