"""`opensem serve` refuses what cannot work before loading anything: clear errors, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run_cli as run


def test_help_lists_the_settings_derived_from_serve_config() -> None:
    from opensem.serving.config import ServeConfig

    code, output = run("serve", "--help")
    assert code == 0
    for name in ServeConfig.model_fields:
        assert f"--{name.replace('_', '-')}" in output, name
    assert "[name=]WHERE[@tag][#folded]" in output


def test_help_and_import_load_no_web_framework_or_torch() -> None:
    script = (
        "import sys\nfrom opensem.cli import main\ntry:\n    main(['serve', '--help'])\nexcept "
        "SystemExit:\n    pass\nprint(sorted(m for m in ('torch', 'fastapi', 'uvicorn', "
        "'starlette', 'prometheus_client') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


@pytest.mark.parametrize("value, said", [(None, "is not set"), ("short-key", "holds 9 characters")])
def test_a_missing_or_short_api_key_is_refused_at_start(
    releases: dict[str, Path], monkeypatch: pytest.MonkeyPatch, value: str | None, said: str
) -> None:
    if value is None:
        monkeypatch.delenv("OPENSEM_API_KEY", raising=False)
    else:
        monkeypatch.setenv("OPENSEM_API_KEY", value)
    code, output = run("serve", str(releases["alpha"]))
    assert (
        code == 2
        and f"OPENSEM_API_KEY {said}" in output
        and "at least 32 characters" in output
        and "hint:" in output
    )
    assert "Traceback" not in output


def test_sources_that_cannot_be_served(releases: dict[str, Path], tmp_path: Path) -> None:
    code, output = run("serve", str(tmp_path / "manifests" / "typo.yaml"))
    assert code == 2 and "typo.yaml: no such manifest, registry folder or release folder" in output
    code, output = run("serve", f"{releases['alpha']}#folded")
    assert code == 2 and "the release has no folded model" in output and "fold: {}" in output
    (tmp_path / "empty").mkdir()
    code, output = run("serve", str(tmp_path / "empty"))
    assert code == 2 and "no servable model here" in output
    manifest = tmp_path / "unbuilt.yaml"
    manifest.write_text(
        "job_id: unbuilt\nbase_model: x\npublish_target:\n  registry: build/registry\n"
    )
    code, output = run("serve", str(manifest))
    assert (
        code == 2
        and "nothing of this manifest is published yet" in output
        and f"opensem build {manifest}" in output
    )
    assert "Traceback" not in output


def test_invalid_settings_are_all_reported(releases: dict[str, Path]) -> None:
    code, output = run("serve", "--port", "70000", "--max-batch-size", "0", str(releases["alpha"]))
    assert (
        code == 2
        and "--port" in output
        and "--max-batch-size" in output
        and "Traceback" not in output
    )
    code, output = run("serve", "--api-key-env", "", str(releases["alpha"]))
    assert code == 2


def test_a_release_that_fails_to_load_stops_the_server_with_its_reason(
    releases: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(releases["alpha"], broken)
    (broken / "adapter" / "adapter_model.safetensors").write_bytes(b"not weights")
    code, output = run("serve", "--port", "0", str(broken))
    assert (
        code == 1
        and "cannot load alpha" in output
        and output.count("header too large") == 1
        and "hint:" in output
        and "Traceback" not in output
    ), output
    assert os.environ["OPENSEM_API_KEY"]
