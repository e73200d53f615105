"""The registry over s3fs against moto's S3 server on 127.0.0.1: publish, immutable tags, verify, pull."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from opensem.errors import RegistryError
from opensem.release.registry import check_published, open_registry, publish_files, pull, read_index

if TYPE_CHECKING:
    from tests.servers.s3 import RestartableS3


def release(tmp_path: Path, text: str) -> dict[str, Path]:
    (tmp_path / "adapter").mkdir(exist_ok=True)
    (tmp_path / "adapter" / "adapter_config.json").write_text(text)
    (tmp_path / "README.md").write_text("# card\n")
    return {
        "adapter/adapter_config.json": tmp_path / "adapter" / "adapter_config.json",
        "README.md": tmp_path / "README.md",
    }


def test_publish_verify_pull_and_refuse_a_second_lot(s3_url: str, tmp_path: Path) -> None:
    fs, root = open_registry(s3_url, tmp_path)
    fs.invalidate_cache()
    receipt = publish_files(
        fs,
        root,
        "expert",
        "v1",
        "a" * 64,
        release(tmp_path, '{"r": 8}'),
        {"trigger_deployment": False},
    )
    assert check_published(fs, root, "expert", "v1", "a" * 64, receipt["digest"]) == []
    entry = pull(fs, root, "expert", "v1", tmp_path / "pulled")
    assert (
        entry["lot"] == "a" * 64
        and (tmp_path / "pulled" / "adapter" / "adapter_config.json").read_text() == '{"r": 8}'
    )

    again = publish_files(fs, root, "expert", "v1", "a" * 64, release(tmp_path, '{"r": 8}'), {})
    assert again["digest"] == receipt["digest"]  # the same lot republished is a no-op in effect
    with pytest.raises(RegistryError, match="immutable|already published"):
        publish_files(fs, root, "expert", "v1", "b" * 64, release(tmp_path, '{"r": 16}'), {})

    fs.pipe_file(f"{root}/expert/v1/README.md", b"# edited\n")
    assert any(
        "README.md was modified" in p
        for p in check_published(fs, root, "expert", "v1", "a" * 64, receipt["digest"])
    )


def test_a_publish_cut_by_the_server_stopping_leaves_no_tag_and_a_rerun_finishes(
    stoppable_s3: RestartableS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, root = open_registry(stoppable_s3.url, tmp_path)
    files = release(tmp_path, '{"r": 8}')
    real_put = fs.put_file

    def server_dies_after_the_first_file(local: str, remote: str, **kwargs: object) -> None:
        real_put(local, remote, **kwargs)
        stoppable_s3.stop()  # a real stop: the next request of the publish finds no server

    monkeypatch.setattr(fs, "put_file", server_dies_after_the_first_file)
    with pytest.raises(Exception) as caught:
        publish_files(fs, root, "expert", "v1", "a" * 64, files, {})
    assert "Could not connect" in str(caught.value)
    monkeypatch.undo()

    stoppable_s3.start()
    fs.invalidate_cache()
    assert (
        read_index(fs, root, "expert")["tags"] == {}
    )  # the index is written last: no tag points at a half upload
    assert check_published(fs, root, "expert", "v1", "a" * 64, "x") == [
        "registry has no tag 'v1' for expert"
    ]
    receipt = publish_files(
        fs, root, "expert", "v1", "a" * 64, files, {}
    )  # the rerun finishes the job
    assert check_published(fs, root, "expert", "v1", "a" * 64, receipt["digest"]) == []
    assert set(read_index(fs, root, "expert")["tags"]) == {"v1"}
