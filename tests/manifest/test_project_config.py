"""[tool.opensem] in a project's pyproject.toml: the cache and executor every manifest shares,
with the manifest's own keys winning, and a clear error with file and key for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensem.errors import ManifestError
from opensem.project import load_graph
from tests.e2e.conftest import copy_demo


def test_the_project_names_the_cache_and_executor_for_every_manifest(tmp_path: Path) -> None:
    project = copy_demo(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "experts"\n\n[tool.opensem]\nexecutor = "ray"\ncache = {url = "s3://team/cache", mode = '
        '"read-write"}\n'
    )
    graph = load_graph(project.manifest)
    assert (
        graph.cache == {"url": "s3://team/cache", "mode": "read-write"} and graph.executor == "ray"
    )

    project.manifest.write_text(
        project.manifest.read_text() + "cache: {url: ../elsewhere}\nexecutor: local\n"
    )
    graph = load_graph(project.manifest)
    assert graph.cache == {"url": "../elsewhere", "mode": "read"} and graph.executor == "local"


def test_without_a_table_stages_run_here_with_no_cache(tmp_path: Path) -> None:
    project = copy_demo(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "experts"\n')
    graph = load_graph(project.manifest)
    assert graph.cache is None and graph.executor == "local"


def test_a_bad_table_names_the_file_and_key(tmp_path: Path) -> None:
    project = copy_demo(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.opensem]\nexecutor = "slurm"\ncache = {mode = "sometimes"}\n'
    )
    with pytest.raises(ManifestError) as caught:
        load_graph(project.manifest)
    text = caught.value.render()
    assert (
        "pyproject.toml: tool.opensem.executor" in text
        and "tool.opensem.cache.url" in text
        and "tool.opensem.cache.mode" in text
    ), text

    (tmp_path / "pyproject.toml").write_text("[tool.opensem\n")
    with pytest.raises(ManifestError, match="cannot read pyproject.toml"):
        load_graph(project.manifest)
