"""The no-op stamp: answer "nothing to do" without loading the planner.

After a build that leaves every stage up to date, opensem records a signature of everything the
result depended on: opensem's own code files, the manifest's and lock's bytes, and the stat key
(size, mtime_ns, inode) of every source file and every stored output file. The next build of the
same manifest recomputes the signature with the standard library alone; if it matches, no stage
can be stale, and the build ends before pydantic, doit or any stage is imported. Any difference
(an edited file, a new file, a touched store entry, an upgraded opensem) falls through to the
full plan, which decides by lot numbers as always. This is the same stat-key trust the digest
cache already places in unchanged files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

PACKAGE_ROOT = (
    Path(__file__).resolve().parents[1]
)  # the opensem package: any code change voids the stamp


def stamp_file(manifest: Path, build_dir: Path, until: str | None) -> Path:
    """One stamp per manifest and build scope (all stages, or up to `--until STAGE`)."""
    key = hashlib.sha256(f"{manifest.resolve()}\0{until or ''}".encode()).hexdigest()[:16]
    return build_dir / "stamps" / f"{key}.json"


def signature(manifest: Path, lock: Path, roots: list[str]) -> str:
    """sha256 over code, manifest, lock and the stat keys of every file below roots."""
    sha = hashlib.sha256()
    for path in (manifest, lock):
        sha.update(path.read_bytes() if path.exists() else b"-")
        sha.update(b"\0")
    _feed_tree(sha, str(PACKAGE_ROOT), with_inode=False)
    for root in roots:
        sha.update(root.encode() + b"\1")
        _feed_tree(sha, root, with_inode=True)
    return sha.hexdigest()


def _feed_tree(sha: Any, root: str, with_inode: bool) -> None:
    try:
        stat = os.stat(root)
    except FileNotFoundError:
        sha.update(b"missing\0")
        return
    if not os.path.isdir(root):
        sha.update(
            f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino if with_inode else 0}\0".encode()
        )
        return
    pending = [root]
    lines: list[str] = []
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                    continue
                info = entry.stat()
                inode = info.st_ino if with_inode else 0
                lines.append(f"{entry.path}\0{info.st_size}:{info.st_mtime_ns}:{inode}")
    lines.sort()
    sha.update("\n".join(lines).encode())


def write_stamp(
    manifest: Path,
    lock: Path,
    build_dir: Path,
    until: str | None,
    roots: list[str],
    stages: list[tuple[str, str]],
    reporting: dict[str, str] | None = None,
) -> None:
    """Record the signature of an up-to-date build scope; `stages` is [(name, lot)] for the report,
    `reporting` {name: kind} of the stages that show one after a build."""
    from opensem.core.files import write_atomic

    data = {
        "roots": roots,
        "stages": stages,
        "reporting": reporting or {},
        "signature": signature(manifest, lock, roots),
    }
    write_atomic(stamp_file(manifest, build_dir, until), json.dumps(data))


def unchanged_stages(
    manifest: Path, lock: Path, build_dir: Path, until: str | None
) -> list[tuple[str, str]] | None:
    """The stages of the stamped build when nothing changed since; None when anything did."""
    try:
        data = json.loads(stamp_file(manifest, build_dir, until).read_text())
    except (OSError, ValueError):
        return None
    if signature(manifest, lock, data["roots"]) != data["signature"]:
        return None
    return [tuple(stage) for stage in data["stages"]]


def stamped_reporting(manifest: Path, build_dir: Path, until: str | None) -> dict[str, str]:
    """{name: kind} of the stamped stages that show a report after a build."""
    try:
        return dict(
            json.loads(stamp_file(manifest, build_dir, until).read_text()).get("reporting") or {}
        )
    except (OSError, ValueError):
        return {}
