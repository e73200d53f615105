"""The content-addressed store: build/store/<lot[:2]>/<lot>/ holding out/ and meta.json.

An entry is written into a temporary directory and renamed into place, so a killed build never
leaves a half result that counts as done. A stage is up to date exactly when its entry exists.
Stored files are made read-only; an entry whose bytes no longer match its meta is dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from opensem.build.digests import DigestCache

META = "meta.json"
FAILED = ".failed"  # <lot>.json: why the last attempt at a lot failed (outside any entry)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, lot: str) -> Path:
        return self.root / lot[:2] / lot

    def out_dir(self, lot: str) -> Path:
        return self.entry(lot) / "out"

    def has(self, lot: str) -> bool:
        return (self.entry(lot) / META).is_file()

    def meta(self, lot: str) -> dict[str, Any]:
        return json.loads((self.entry(lot) / META).read_text())

    def output_digest(self, lot: str) -> str | None:
        try:
            return str(self.meta(lot)["output"])
        except (OSError, ValueError, KeyError):
            return None

    def begin(self, lot: str) -> Path:
        """A fresh temporary entry for lot; its out/ is where the stage writes."""
        staging = self.root / ".tmp"
        staging.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{lot[:16]}-", dir=staging))
        (tmp / "out").mkdir()
        return tmp

    def commit(self, tmp: Path, lot: str, meta: dict[str, Any]) -> Path:
        """Write meta.json, freeze the files and rename the entry into place atomically."""
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        _make_read_only(tmp)
        final = self.entry(lot)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # someone else finished the same lot first; theirs is as good
            discard(tmp)
            return final
        os.rename(tmp, final)
        return final

    def drop(self, lot: str) -> None:
        discard(self.entry(lot))

    def _failure_file(self, lot: str) -> Path:
        return self.root / FAILED / f"{lot}.json"

    def record_failure(self, lot: str, record: dict[str, Any]) -> None:
        """Remember why a lot failed (a failed gate blocks the build), so plan can say so; never a result."""
        path = self._failure_file(lot)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    def failure(self, lot: str) -> dict[str, Any] | None:
        """Why the last attempt at lot failed, or None."""
        try:
            record = json.loads(self._failure_file(lot).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def clear_failure(self, lot: str) -> None:
        self._failure_file(lot).unlink(missing_ok=True)

    def intact(self, lot: str, cache: DigestCache) -> bool:
        """Whether the stored out/ still has the digest recorded when it was built."""
        expected = self.output_digest(lot)
        return expected is not None and self.out_dir(lot).is_dir() and cache.directory(self.out_dir(lot)) == expected


def _make_read_only(root: Path) -> None:
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
