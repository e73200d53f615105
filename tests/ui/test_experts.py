"""Finding an expert's manifest by the name the pages use."""

from __future__ import annotations

from pathlib import Path

from opensem.ui.experts import manifest_named


def test_an_expert_is_found_by_job_id_or_file_name_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    renamed = tmp_path / "manifests" / "coffee-v2.yaml"
    renamed.write_text("job_id: coffee\n")
    (tmp_path / "secret.yaml").write_text("job_id: secret\n")
    assert manifest_named(tmp_path, "coffee") == renamed
    assert manifest_named(tmp_path, "coffee-v2") == renamed
    assert manifest_named(tmp_path, "../secret") is None
    assert manifest_named(tmp_path, "secret") is None
