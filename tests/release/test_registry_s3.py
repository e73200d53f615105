"""The registry over s3fs against moto's S3 server on 127.0.0.1: publish, immutable tags, verify, pull."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.errors import RegistryError
from opensem.release.registry import check_published, open_registry, publish_files, pull


def release(tmp_path: Path, text: str) -> dict[str, Path]:
    (tmp_path / "adapter").mkdir(exist_ok=True)
    (tmp_path / "adapter" / "adapter_config.json").write_text(text)
    (tmp_path / "README.md").write_text("# card\n")
    return {"adapter/adapter_config.json": tmp_path / "adapter" / "adapter_config.json", "README.md": tmp_path / "README.md"}


def test_publish_verify_pull_and_refuse_a_second_lot(s3_url: str, tmp_path: Path) -> None:
    fs, root = open_registry(s3_url, tmp_path)
    fs.invalidate_cache()
    receipt = publish_files(fs, root, "expert", "v1", "a" * 64, release(tmp_path, '{"r": 8}'), {"trigger_deployment": False})
    assert check_published(fs, root, "expert", "v1", "a" * 64, receipt["digest"]) == []
    entry = pull(fs, root, "expert", "v1", tmp_path / "pulled")
    assert entry["lot"] == "a" * 64 and (tmp_path / "pulled" / "adapter" / "adapter_config.json").read_text() == '{"r": 8}'

    again = publish_files(fs, root, "expert", "v1", "a" * 64, release(tmp_path, '{"r": 8}'), {})
    assert again["digest"] == receipt["digest"]  # the same lot republished is a no-op in effect
    with pytest.raises(RegistryError, match="immutable|already published"):
        publish_files(fs, root, "expert", "v1", "b" * 64, release(tmp_path, '{"r": 16}'), {})

    fs.pipe_file(f"{root}/expert/v1/README.md", b"# edited\n")
    assert any("README.md was modified" in p for p in check_published(fs, root, "expert", "v1", "a" * 64, receipt["digest"]))
