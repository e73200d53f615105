"""Removing local store entries no lock refers to.

An entry is reachable when a lock file of the project (manifests/*.lock) records its lot; the rest
are results of settings tried and left. Their scratch folders (build/work/<lot>) go with them,
and so do staging folders of builds that were killed a day or more ago.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from opensem.core.files import discard, tally
from opensem.core.lock import DamagedLock, lots_of_lock, read_lock
from opensem.core.store import Store

STAGING_AGE_S = 24 * 3600  # a staging folder this old belongs to no running build


@dataclass
class Collection:
    entries: list[tuple[str, int]] = field(default_factory=list)  # (lot, bytes) unreachable
    staging: list[Path] = field(default_factory=list)
    kept: int = 0

    @property
    def bytes(self) -> int:
        """Bytes the collection would free."""
        return sum(size for _, size in self.entries)


def reachable_lots(project_root: Path) -> set[str]:
    """Every lot a lock of the project records (locks in manifests/ or at the project root)."""
    lots: set[str] = set()
    for lock in sorted([*project_root.glob("manifests/*.lock"), *project_root.glob("*.lock")]):
        try:
            lots.update(lots_of_lock(read_lock(lock)).values())
        except DamagedLock:
            continue  # a damaged lock keeps nothing alive; `opensem build` rewrites it
    return lots


def collect(store: Store, project_root: Path, work: Path, dry_run: bool) -> Collection:
    """Find (and unless dry_run remove) what no lock refers to."""
    keep = reachable_lots(project_root)
    found = Collection()
    for meta in sorted(store.root.glob("??/*/meta.json")):
        lot = meta.parent.name
        if lot in keep:
            found.kept += 1
            continue
        found.entries.append((lot, tally(meta.parent)[1]))
        if not dry_run:
            store.drop(lot)
            discard(work / lot)
            store.clear_failure(lot)
    staging = store.root / ".tmp"
    if staging.is_dir():
        found.staging = [
            p for p in sorted(staging.iterdir()) if time.time() - p.stat().st_mtime > STAGING_AGE_S
        ]
        if not dry_run:
            for path in found.staging:
                discard(path)
    return found
