"""Writing files so that a reader never sees half of one, and removing trees the store froze.

Every file opensem rewrites in place (the lock, caches, stamps, exports, records) goes through
write_atomic: the bytes land in a temporary file beside the target and are renamed over it, so a
killed process leaves either the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def write_atomic(path: Path | str, data: str | bytes, fsync: bool = False) -> None:
    """Replace path's content with data in one rename; the folder is created when missing.

    fsync makes the bytes durable before the rename, for files that record money spent (answers a
    paid teacher gave) and must survive a power cut, not only a killed process.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path | str, data: object) -> None:
    """Write data as indented JSON with sorted keys (stable bytes for equal data), atomically."""
    import json

    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def make_read_only(root: Path) -> None:
    """Clear the write bits of every file below root (stored results are never edited in place)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) & ~0o222)


def discard(path: Path) -> None:
    """Remove a directory tree even where its files were made read-only."""
    if not path.exists():
        return

    def _unlock(func: Any, target: str, _exc: Any) -> None:
        os.chmod(os.path.dirname(target), 0o755)
        os.chmod(target, 0o644)
        func(target)

    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path, onerror=_unlock)


def tally(path: Path) -> tuple[int, int]:
    """(files, bytes) of a file or everything under a folder; (0, 0) when it is not there."""
    if path.is_file():
        return 1, path.stat().st_size
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def append_lines(path: Path, lines: list[str]) -> None:
    """Append lines durably: one write per line, fsynced before returning, so a crash loses at
    most the line being written; a line torn by an earlier crash is left alone on its line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        if os.fstat(fd).st_size:
            with path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    os.write(fd, b"\n")
        for line in lines:
            os.write(fd, (line.rstrip("\n") + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class StatMemo:
    """What reading a file gave, kept while the file's size, modification time and inode stay the
    same: a long-running process (the browser interface) reads a growing log again only after it
    changed. A few files at a time; the oldest is forgotten first."""

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self.kept: dict[tuple[str, object], tuple[tuple[int, int, int], Any]] = {}

    def get(self, path: Path, key: object, read: Callable[[], T]) -> T:
        """read()'s result for path (and key, which tells apart ways of reading it)."""
        found = path.stat()
        mark = (found.st_mtime_ns, found.st_size, found.st_ino)
        slot = (str(path.resolve()), key)
        kept = self.kept.get(slot)
        if kept is not None and kept[0] == mark:
            result: T = kept[1]
            return result
        value = read()
        self.kept.pop(slot, None)
        if len(self.kept) >= self.limit:
            self.kept.pop(next(iter(self.kept)))
        self.kept[slot] = (mark, value)
        return value
