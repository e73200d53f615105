"""The `opensem` command answers a build with nothing to do before loading click, rich or pydantic,
and hands everything else to the full CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from opensem.core.stamp import write_stamp
from opensem.noop import build_arguments

LOADED = (
    "import sys; print(json.dumps(sorted(m for m in ('click', 'rich', 'pydantic', 'doit', "
    "'opensem.cli') if m in sys.modules)))"
)


@pytest.mark.parametrize(
    "argv, parsed",
    [
        (["build", "m.yaml"], (Path("m.yaml"), None)),
        (["build", "m.yaml", "--until", "split"], (Path("m.yaml"), "split")),
        (
            ["build", "--until=split", "-j", "2", "m.yaml", "--executor", "ray"],
            (Path("m.yaml"), "split"),
        ),
        (["build", "a.yaml", "b.yaml"], None),  # several manifests: the full CLI
        (["build", "m.yaml", "--force", "train"], None),
        (["build", "m.yaml", "--until"], None),
        (["build", "--help"], None),
        (["-v", "build", "m.yaml"], None),
        (["plan", "m.yaml"], None),
        ([], None),
    ],
)
def test_only_a_plain_build_of_one_manifest_is_answered_here(
    argv: list[str], parsed: tuple[Path, str | None] | None
) -> None:
    assert build_arguments(argv) == parsed


def stamped_project(
    root: Path, stages: list[tuple[str, str]], reporting: dict[str, str] | None = None
) -> Path:
    (root / "manifests").mkdir(parents=True)
    manifest = root / "manifests" / "m.yaml"
    manifest.write_text("job_id: m\n")
    (root / "manifests" / "m.lock").write_text("{}")
    (root / "data").mkdir()
    (root / "data" / "a.txt").write_text("a")
    write_stamp(
        manifest,
        root / "manifests" / "m.lock",
        root / "build",
        None,
        [str(root / "data")],
        stages,
        reporting,
    )
    return manifest


def run_entry(manifest: Path) -> subprocess.CompletedProcess[str]:
    code = (
        f"import json, sys; sys.argv = ['opensem', 'build', {str(manifest)!r}]\nfrom opensem.entry "
        "import main\ntry:\n    main()\nexcept SystemExit as exit:\n    print('exit', "
        f"exit.code)\n{LOADED}"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def test_a_stamped_build_is_answered_with_the_standard_library_alone(tmp_path: Path) -> None:
    manifest = stamped_project(tmp_path, [("ingest", "a" * 64), ("split", "b" * 64)])
    done = run_entry(manifest)
    assert done.stdout.splitlines() == ["exit 0", "[]"], (
        done.stdout + done.stderr
    )  # nothing heavy was imported
    assert done.stderr.splitlines()[:2] == [
        f"  · ingest        up to date   {'a' * 12}",
        f"  · split         up to date   {'b' * 12}",
    ]
    assert (
        "Nothing to do: all 2 stages up to date" in done.stderr
        and "m.lock unchanged." in done.stderr
    )

    (tmp_path / "data" / "a.txt").write_text(
        "changed"
    )  # the stamp no longer matches: the full CLI plans it
    done = run_entry(manifest)
    assert '"opensem.cli"' in done.stdout and "Nothing to do" not in done.stderr


def test_a_build_with_a_report_to_show_goes_to_the_full_cli(tmp_path: Path) -> None:
    manifest = stamped_project(
        tmp_path, [("evaluate", "c" * 64)], {"evaluate": "evaluate"}
    )  # the stage kind says it reports
    done = run_entry(manifest)
    assert '"opensem.cli"' in done.stdout, done.stdout + done.stderr
