"""The no-op stamp changes with anything a build depended on, and only then."""

import os
from pathlib import Path

from opensem.core.stamp import unchanged_stages, write_stamp


def make_project(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("job_id: x\n")
    lock = tmp_path / "m.lock"
    lock.write_text("{}")
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_text("a")
    entry = tmp_path / "store" / "ab"
    entry.mkdir(parents=True)
    (entry / "meta.json").write_text("{}")
    return manifest, lock, source, entry


def stamp(tmp_path: Path, until: str | None = None) -> list:
    """Stamp the project in tmp_path as built, creating it on first use."""
    if not (tmp_path / "m.yaml").exists():
        make_project(tmp_path)
    manifest, lock, source, entry = (
        tmp_path / "m.yaml",
        tmp_path / "m.lock",
        tmp_path / "data",
        tmp_path / "store" / "ab",
    )
    write_stamp(
        manifest, lock, tmp_path / "build", until, [str(source), str(entry)], [("ingest", "ab")]
    )
    return [manifest, lock, source, entry]


def still_valid(tmp_path: Path, until: str | None = None) -> bool:
    return (
        unchanged_stages(tmp_path / "m.yaml", tmp_path / "m.lock", tmp_path / "build", until)
        is not None
    )


def test_unchanged_project_reports_its_stages(tmp_path: Path) -> None:
    stamp(tmp_path)
    assert unchanged_stages(tmp_path / "m.yaml", tmp_path / "m.lock", tmp_path / "build", None) == [
        ("ingest", "ab")
    ]


def test_scope_is_part_of_the_key(tmp_path: Path) -> None:
    stamp(tmp_path, until="split")
    assert still_valid(tmp_path, "split") and not still_valid(tmp_path, None)


def test_edits_added_files_and_touched_store_entries_invalidate(tmp_path: Path) -> None:
    manifest, lock, source, entry = stamp(tmp_path)
    for change in (
        lambda: (source / "a.txt").write_text("b"),
        lambda: (source / "new.txt").write_text("n"),
        lambda: os.utime(entry / "meta.json", ns=(5, 5)),
        lambda: manifest.write_text("job_id: y\n"),
        lambda: lock.write_text('{"x": 1}'),
        lambda: (source / "a.txt").unlink(),
    ):
        stamp(tmp_path)
        assert still_valid(tmp_path)
        change()
        assert not still_valid(tmp_path)


def test_missing_or_corrupt_stamp_means_plan_normally(tmp_path: Path) -> None:
    make_project(tmp_path)
    assert not still_valid(tmp_path)
    stamp(tmp_path)
    for path in (tmp_path / "build" / "stamps").iterdir():
        path.write_text("{broken")
    assert not still_valid(tmp_path)
