"""Digests of files and directories, and the lot numbers built from them.

A file's digest is the sha256 of its bytes. A directory's digest is the sha256 of the canonical
JSON of its sorted listing of [relative path, file digest, size]. A lot number is the sha256 of
the canonical JSON of {stage, version, params, inputs}. Source digests are cached by
(path, size, mtime_ns, inode) so an unchanged tree is never read twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable

CHUNK = 1 << 20
# Above this size a file is hashed on a worker thread; hashlib releases the GIL while it works.
THREADED_MIN_BYTES = 256 * 1024


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, compact separators and no NaN: the same value, the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest() if hasattr(hashlib, "file_digest") else _digest_stream(handle)


def _digest_stream(handle: Any) -> str:
    sha = hashlib.sha256()
    for block in iter(lambda: handle.read(CHUNK), b""):
        sha.update(block)
    return sha.hexdigest()


def listing_digest(entries: Iterable[tuple[str, str, int]]) -> str:
    """Digest of a directory listing of (relative posix path, file digest, size)."""
    return sha256_text(canonical_json(sorted([list(e) for e in entries])))


def walk_files(root: Path) -> list[Path]:
    """Every regular file below root, sorted, following no symlinked directories."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found.extend(Path(dirpath) / name for name in sorted(filenames))
    return found


def lot_number(stage: str, version: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """The lot number of one stage run: what ran, with which settings, on which bytes."""
    return sha256_text(canonical_json({"stage": stage, "version": version, "params": params, "inputs": inputs}))


class DigestCache:
    """Digests of source files keyed by (path, size, mtime_ns, inode), persisted as one JSON file.

    A file whose stat key is unchanged is not read again; anything else is rehashed. Both cores
    are used for cold hashing of large files.
    """

    def __init__(self, cache_file: Path | None) -> None:
        self.cache_file = cache_file
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        if cache_file is not None and cache_file.exists():
            try:
                self._entries = json.loads(cache_file.read_text())
            except (OSError, ValueError):
                self._entries = {}  # a corrupt cache is dropped, never trusted

    def file(self, path: Path) -> str:
        return self.files([path])[0][0]

    def files(self, paths: list[Path]) -> list[tuple[str, int]]:
        """(digest, size) of each path, in order; reads only files whose stat key changed."""
        results: list[tuple[str, int] | None] = [None] * len(paths)
        misses: list[tuple[int, str, list[Any]]] = []
        for index, path in enumerate(paths):
            stat = os.stat(path)
            key = str(path)
            stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
            cached = self._entries.get(key)
            if cached is not None and cached[:3] == stamp:
                results[index] = (cached[3], stat.st_size)
            else:
                misses.append((index, key, stamp))
        if misses:
            self._hash_misses(paths, misses, results)
        return [r for r in results if r is not None]

    def _hash_misses(self, paths: list[Path], misses: list[tuple[int, str, list[Any]]], results: list[Any]) -> None:
        big = [m for m in misses if m[2][0] >= THREADED_MIN_BYTES]
        small = [m for m in misses if m[2][0] < THREADED_MIN_BYTES]
        digests: dict[int, str] = {}
        if big:
            workers = min(len(big), os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for (index, _, _), digest in zip(big, pool.map(lambda m: digest_file(paths[m[0]]), big)):
                    digests[index] = digest
        for index, _, _ in small:
            digests[index] = digest_file(paths[index])
        for index, key, stamp in misses:
            self._entries[key] = [*stamp, digests[index]]
            results[index] = (digests[index], stamp[0])
        self._dirty = True

    def directory(self, root: Path) -> str:
        files = walk_files(root)
        digests = self.files(files)
        return listing_digest((f.relative_to(root).as_posix(), d, s) for f, (d, s) in zip(files, digests))

    def path(self, path: Path) -> str:
        """Digest of a file or a directory."""
        return self.directory(path) if path.is_dir() else self.file(path)

    def save(self) -> None:
        if not self._dirty or self.cache_file is None:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_file.parent, prefix=".digests-")
        with os.fdopen(fd, "w") as handle:
            json.dump(self._entries, handle, separators=(",", ":"))
        os.replace(tmp, self.cache_file)
        self._dirty = False


def digest_tree(root: Path) -> str:
    """Digest of a file or directory without any cache (store entries, verification)."""
    return DigestCache(None).path(root)
