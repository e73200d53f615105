"""The content-addressed store: build/store/<lot[:2]>/<lot>/ holding out/ and meta.json.

An entry is written into a temporary directory and renamed into place, so a killed build never
leaves a half result that counts as done. A stage is up to date exactly when its entry exists.
Stored files are made read-only; an entry whose bytes no longer match its meta is dropped.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from opensem.core.digests import DigestCache
from opensem.core.files import discard, make_read_only, write_atomic

META = "meta.json"
FAILED = ".failed"  # <lot>.json: why the last attempt at a lot failed (outside any entry)


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, lot: str) -> Path:
        """The folder of a lot's entry (sharded by its first two characters)."""
        return self.root / lot[:2] / lot

    def out_dir(self, lot: str) -> Path:
        """Where a lot's stage wrote its output."""
        return self.entry(lot) / "out"

    def has(self, lot: str) -> bool:
        """Whether the lot has a finished entry (meta.json is written last)."""
        return (self.entry(lot) / META).is_file()

    def meta(self, lot: str) -> dict[str, Any]:
        """The entry's meta.json: lot, output digest, versions, timings."""
        return json.loads((self.entry(lot) / META).read_text())

    def output_digest(self, lot: str) -> str | None:
        """The digest of the entry's output, or None when it is missing or unreadable."""
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

    def discard_staging(self, lot: str) -> int:
        """Remove the staging folders a killed attempt at lot left; call it holding lot's lock (no live one exists)."""
        staging = self.root / ".tmp"
        found = list(staging.glob(f"{lot[:16]}-*")) if staging.is_dir() else []
        for path in found:
            discard(path)
        return len(found)

    def commit(self, tmp: Path, lot: str, meta: dict[str, Any]) -> Path:
        """Write meta.json, freeze the files and rename the entry into place atomically.

        Two builds may finish the same lot at once: the first rename wins, and the other finds
        the entry there (the rename of a directory onto a non-empty one fails) and drops its own
        copy, which is as good. Checking first and renaming after would race.
        """
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        make_read_only(tmp)
        final = self.entry(lot)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not self.has(lot):
                raise
            discard(tmp)
        return final

    def drop(self, lot: str) -> None:
        """Remove the lot's entry."""
        discard(self.entry(lot))

    def _failure_file(self, lot: str) -> Path:
        return self.root / FAILED / f"{lot}.json"

    def record_failure(self, lot: str, record: dict[str, Any]) -> None:
        """Remember why a lot failed (a failed gate blocks the build), so plan can say so; never a result."""
        write_atomic(self._failure_file(lot), json.dumps(record, indent=2, sort_keys=True) + "\n")

    def failure(self, lot: str) -> dict[str, Any] | None:
        """Why the last attempt at lot failed, or None."""
        try:
            record = json.loads(self._failure_file(lot).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def clear_failure(self, lot: str) -> None:
        """Forget a recorded failure of the lot (it built since)."""
        self._failure_file(lot).unlink(missing_ok=True)

    def intact(self, lot: str, cache: DigestCache) -> bool:
        """Whether the stored out/ still has the digest recorded when it was built."""
        expected = self.output_digest(lot)
        return (
            expected is not None
            and self.out_dir(lot).is_dir()
            and cache.directory(self.out_dir(lot)) == expected
        )
