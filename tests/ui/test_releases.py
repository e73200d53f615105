"""The settings that differ between two releases, as the release page lists them."""

from __future__ import annotations

from pathlib import Path

import fsspec

from opensem.ui.releases import differences, flat


def test_differences_name_each_changed_setting(tmp_path: Path) -> None:
    for tag, rate, extra in (("v1", 0.001, ""), ("v2", 0.0005, "persona: {system: Be brief.}\n")):
        (tmp_path / tag).mkdir()
        (tmp_path / tag / "manifest.yaml").write_text(
            f"job_id: coffee\ntraining: {{learning_rate: {rate}, max_steps: 30}}\n{extra}"
        )
    fs = fsspec.filesystem("file")
    assert differences(fs, str(tmp_path), "v2", "v1") == [
        ("persona.system", "(unset)", "Be brief."),
        ("training.learning_rate", "0.001", "0.0005"),
    ]
    assert differences(fs, str(tmp_path), "v1", None) == []
    assert flat({"a": {"b": [1, 2]}}) == {"a.b": "[1, 2]"}
