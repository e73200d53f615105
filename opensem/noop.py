"""`opensem build` with nothing to do, answered with the standard library alone.

The `opensem` command starts here (opensem.entry): a plain `opensem build MANIFEST` whose no-op
stamp still matches (opensem.core.stamp) is answered before click, rich or pydantic load, so an
unchanged project costs little more than stat-ing its files. Anything else, and a build whose
stages print a report (evaluate, review, compare: rich tables), goes to the full CLI.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

IGNORED_OPTIONS = (
    "-j",
    "--jobs",
    "--executor",
)  # where and how many stages would run: nothing runs


def build_arguments(argv: list[str]) -> tuple[Path, str | None] | None:
    """(manifest, until) of `build MANIFEST [--until STAGE] [-j N] [--executor E]`; None for anything else."""
    if not argv or argv[0] != "build":
        return None
    manifests: list[str] = []
    until: str | None = None
    rest = argv[1:]
    while rest:
        word = rest.pop(0)
        name, _, inline = word.partition("=")
        if name == "--until" or name in IGNORED_OPTIONS:
            if not inline and (not rest or rest[0].startswith("-")):
                return None
            value = inline or rest.pop(0)
            until = value if name == "--until" else until
        elif word.startswith("-"):
            return None
        else:
            manifests.append(word)
    return (Path(manifests[0]), until) if len(manifests) == 1 else None


def unchanged(manifest: Path, until: str | None) -> list[tuple[str, str]] | None:
    """The stamped stages [(name, lot)] when nothing they depend on changed; None otherwise."""
    from opensem.core.layout import Layout, lock_path, project_root_of
    from opensem.core.stamp import unchanged_stages

    if not manifest.is_file():
        return None
    return unchanged_stages(
        manifest, lock_path(manifest), Layout(project_root_of(manifest)).build, until
    )


def reporting(manifest: Path, until: str | None) -> dict[str, str]:
    """{name: kind} of the stamped stages that show a report after a build."""
    from opensem.core.layout import Layout, project_root_of
    from opensem.core.stamp import stamped_reporting

    return stamped_reporting(manifest, Layout(project_root_of(manifest)).build, until)


def report_lines(stages: list[tuple[str, str]], seconds: float, manifest: Path) -> list[str]:
    """What a no-op build prints, the same from here and from the full CLI."""
    lines = [f"  · {name:<13} up to date   {lot[:12]}" for name, lot in stages]
    lines.append(
        f"Nothing to do: all {len(stages)} stages up to date ({seconds:.2f} s). "
        f"{manifest.with_suffix('.lock').name} unchanged."
    )
    return lines


def answer(argv: list[str], started: float) -> bool:
    """Print the no-op report and return True when argv is a build with nothing to do and no report to show."""
    parsed = build_arguments(argv)
    if parsed is None:
        return False
    manifest, until = parsed
    stages = unchanged(manifest, until)
    if stages is None or reporting(manifest, until):  # a report to show needs the full CLI
        return False
    sys.stderr.write(
        "\n".join(report_lines(stages, time.perf_counter() - started, manifest)) + "\n"
    )
    return True
