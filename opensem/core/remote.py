"""A stage cache shared between machines, at any fsspec URL (a folder, s3://bucket/prefix, ...).

Layout: <url>/<lot[:2]>/<lot>.tar holds the entry's out/ folder; <lot>.json beside it holds the
entry's meta.json and is written last, so an entry exists exactly when its .json does, and an
upload cut short leaves only a tar nobody reads. Before a stage runs, its lot is looked up there;
a hit is downloaded into the local store's staging area, its output digest checked against the
meta, and renamed into the store like any built entry. A corrupt or unreadable entry is reported
and ignored, never trusted. After a stage runs, a read-write cache receives the new entry.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from opensem.core.digests import DigestCache
from opensem.core.files import discard
from opensem.core.store import Store
from opensem.errors import UsageError

CacheMode = Literal["read", "read-write"]
ENV_URL, ENV_MODE = "OPENSEM_CACHE", "OPENSEM_CACHE_MODE"


@dataclass
class Fetched:
    """What a lookup found: hit, miss, or corrupt (with why)."""

    status: Literal["hit", "miss", "corrupt"]
    reason: str = ""


class RemoteCache:
    def __init__(
        self, url: str, mode: CacheMode, project_root: Path, location: str | None = None
    ) -> None:
        """location: where url points, resolved already (a folder named relative to another machine's project)."""
        import fsspec

        self.url, self.mode = url, mode
        self.location = location or (url if "://" in url else str((project_root / url).resolve()))
        self.fs, self.root = fsspec.core.url_to_fs(self.location)
        self.root = self.root.rstrip("/")

    @property
    def writable(self) -> bool:
        """Whether this build may upload to the cache."""
        return self.mode == "read-write"

    def _key(self, lot: str, suffix: str) -> str:
        return posixpath.join(self.root, lot[:2], f"{lot}{suffix}")

    def has(self, lot: str) -> bool:
        """Whether the cache holds the lot's entry."""
        return bool(self.fs.exists(self._key(lot, ".json")))

    def fetch(self, lot: str, store: Store, digests: DigestCache) -> Fetched:
        """Bring lot's entry into the local store, digest checked; a miss or a corrupt entry changes nothing."""
        try:
            if not self.fs.exists(self._key(lot, ".json")):
                return Fetched("miss")
            meta = json.loads(self.fs.cat_file(self._key(lot, ".json")))
            payload = self.fs.cat_file(self._key(lot, ".tar"))
        except (
            Exception
        ) as exc:  # unreachable, no credentials, half an entry: build it here instead
            return Fetched("corrupt", f"{type(exc).__name__}: {exc}")
        if not isinstance(meta, dict) or meta.get("lot") != lot or "output" not in meta:
            return Fetched("corrupt", "its meta.json does not describe this lot")
        tmp = store.begin(lot)
        try:
            _extract(payload, tmp / "out")
            found = digests.directory(tmp / "out")
            if found != meta["output"]:
                discard(tmp)
                return Fetched(
                    "corrupt",
                    f"its files digest to {found[:12]}, its meta says {str(meta['output'])[:12]}",
                )
            store.commit(tmp, lot, {**meta, "pulled_from": self.url})
        except (tarfile.TarError, OSError, ValueError) as exc:
            discard(tmp)
            return Fetched("corrupt", f"{type(exc).__name__}: {exc}")
        return Fetched("hit")

    def push(self, lot: str, store: Store, replace: bool = False) -> bool:
        """Upload lot's local entry (tar first, meta last); False when the cache has it already
        (replace: a forced rebuild's entry takes the place of the one there)."""
        if self.has(lot) and not replace:
            return False
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(store.out_dir(lot), arcname=".", filter=_portable)
        meta = {key: value for key, value in store.meta(lot).items() if key != "pulled_from"}
        self.fs.makedirs(
            posixpath.dirname(self._key(lot, ".tar")), exist_ok=True
        )  # a folder cache needs it; object stores ignore it
        self.fs.pipe_file(self._key(lot, ".tar"), buffer.getvalue())
        self.fs.pipe_file(
            self._key(lot, ".json"), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode()
        )
        return True


def _portable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _extract(payload: bytes, destination: Path) -> None:
    """Unpack a cached out/ folder; links and paths leaving the folder are refused (tarfile's data filter)."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as tar:
        tar.extractall(destination, filter="data")


def cache_from(
    config: dict[str, str] | None, project_root: Path, environ: Mapping[str, str]
) -> RemoteCache | None:
    """The cache a build uses: OPENSEM_CACHE (and OPENSEM_CACHE_MODE) over the manifest's `cache:`."""
    config = config or {}
    url = environ.get(ENV_URL) or config.get("url")
    if not url:
        return None
    mode = environ.get(ENV_MODE) or config.get("mode") or "read"
    if mode not in ("read", "read-write"):
        raise UsageError(
            f"{ENV_MODE} is {mode!r}", hint="use read (developer machines) or read-write (CI)"
        )
    return RemoteCache(url, mode, project_root)  # type: ignore[arg-type]  # checked above


def push_lots(
    remote: RemoteCache, store: Store, lots: dict[str, str]
) -> tuple[list[str], list[str], list[str]]:
    """Upload what the local store holds of lots: (uploaded, already there, missing locally) stage names."""
    uploaded, present, missing = [], [], []
    for name, lot in lots.items():
        if not store.has(lot):
            missing.append(name)
        elif remote.push(lot, store):
            uploaded.append(name)
        else:
            present.append(name)
    return uploaded, present, missing


def pull_lots(
    remote: RemoteCache, store: Store, digests: DigestCache, lots: dict[str, str]
) -> dict[str, Fetched]:
    """Download the lots the local store lacks; {stage: what the lookup found} (local ones are hits)."""
    return {
        name: Fetched("hit", "local") if store.has(lot) else remote.fetch(lot, store, digests)
        for name, lot in lots.items()
    }
