"""Digests of files and directories.

A file's digest is the sha256 of its bytes. A directory's digest is the sha256 of the canonical
JSON of its sorted listing of [relative path, file digest, size]. Source digests are cached by
(path, size, mtime_ns, inode) so an unchanged tree is never read twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from opensem.core.files import write_atomic

CHUNK = 1 << 20
# Files up to this size are read with one read call and hashed in one update; larger ones stream.
WHOLE_FILE_MAX_BYTES = 16 << 20
# Cold hashing of at least THREADED_MIN_BYTES in all goes to a thread pool, one thread per core
# (hashlib releases the GIL while it hashes). A file of SOLO_MIN_BYTES or more is a task of its
# own; smaller files are batched into tasks of about BATCH_BYTES, read sequentially on one thread.
THREADED_MIN_BYTES = 256 * 1024
SOLO_MIN_BYTES = 2 << 20
BATCH_BYTES = 8 << 20


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, compact separators and no NaN: the same value, the same bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_text(text: str) -> str:
    """SHA256 of text as UTF-8, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_file(path: Path | str) -> str:
    """sha256 of a file's bytes: read whole when small, else streamed in 1 MiB chunks."""
    with open(path, "rb", buffering=0) as handle:
        if os.fstat(handle.fileno()).st_size <= WHOLE_FILE_MAX_BYTES:
            return hashlib.sha256(
                handle.readall()
            ).hexdigest()  # readall reads to EOF, even if the file grew
        return _digest_stream(handle)


def _digest_stream(handle: Any) -> str:
    sha = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while True:
        size = handle.readinto(buffer)
        if not size:
            return sha.hexdigest()
        sha.update(view[:size])


def listing_digest(entries: Iterable[tuple[str, str, int]]) -> str:
    """Digest of a directory listing of (relative posix path, file digest, size)."""
    return sha256_text(
        canonical_json(sorted(tuple(e) for e in entries))
    )  # tuples encode as JSON arrays


def usable_cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def walk_files(root: Path) -> list[Path]:
    """Every regular file below root, sorted, following no symlinked directories."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found.extend(Path(dirpath) / name for name in sorted(filenames))
    return found


def _scan(root: str, prefix: str = "") -> list[tuple[str, str]]:
    """(relative posix path, full path) of every file below root, as walk_files finds them.

    Strings instead of Path objects: on a tree of 10,000 files this is several times faster, and
    the full paths are exactly str(walk_files(root)[i]), the digest cache's keys.
    """
    found: list[tuple[str, str]] = []
    try:
        with os.scandir(root) as entries:
            listed = list(entries)
    except OSError:
        return found  # as os.walk: an unreadable or missing directory lists nothing
    for entry in listed:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            found.append((prefix + entry.name, entry.path))
        elif not entry.is_symlink():
            found.extend(_scan(entry.path, f"{prefix}{entry.name}/"))
    return found


class DigestCache:
    """Digests of source files keyed by (path, size, mtime_ns, inode), persisted as one JSON file.

    A file whose stat key is unchanged is not read again; anything else is rehashed, on every
    core when there is enough to hash.
    """

    def __init__(self, cache_file: Path | None) -> None:
        self.cache_file = cache_file
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        self._memo: dict[str, str] = {}
        if cache_file is not None and cache_file.exists():
            try:
                self._entries = json.loads(cache_file.read_text())
            except (OSError, ValueError):
                self._entries = {}  # a corrupt cache is dropped, never trusted

    def file(self, path: Path) -> str:
        """The digest of one file (from the cache while its size and mtime hold)."""
        return self.files([path])[0][0]

    def files(self, paths: list[Path]) -> list[tuple[str, int]]:
        """(digest, size) of each path, in order; reads only files whose stat key changed."""
        return self._lookup([str(path) for path in paths], paths)

    def _lookup(self, keys: list[str], openers: list[Any]) -> list[tuple[str, int]]:
        """(digest, size) per cache key (a file's path as a string); misses are read via openers."""
        results: list[tuple[str, int]] = []
        misses: list[tuple[int, str, list[Any]]] = []
        entries = self._entries
        for index, key in enumerate(keys):
            stat = os.stat(key)
            size = stat.st_size
            cached = entries.get(key)
            if (
                cached is not None
                and cached[0] == size
                and cached[1] == stat.st_mtime_ns
                and cached[2] == stat.st_ino
            ):
                results.append((cached[3], size))
            else:
                results.append(("", size))
                misses.append((index, key, [size, stat.st_mtime_ns, stat.st_ino]))
        if misses:
            self._hash_misses(openers, misses, results)
        return results

    def _hash_misses(
        self, paths: list[Any], misses: list[tuple[int, str, list[Any]]], results: list[Any]
    ) -> None:
        """Hash the files that missed the cache: on a thread pool when there is enough to read.

        Small files are grouped into batches of about BATCH_BYTES, each read sequentially on one
        thread, so per-file overhead stays low while every core hashes (hashlib drops the GIL).
        """
        total = sum(stamp[0] for _, _, stamp in misses)
        workers = usable_cores()
        digests: list[str]
        if workers < 2 or len(misses) < 2 or total < THREADED_MIN_BYTES:
            digests = [digest_file(paths[index]) for index, _, _ in misses]
        else:
            tasks: list[list[int]] = []  # each a list of positions in misses
            batch: list[int] = []
            batch_bytes = 0
            for position, (_, _, stamp) in enumerate(misses):
                if stamp[0] >= SOLO_MIN_BYTES:
                    tasks.append([position])
                    continue
                batch.append(position)
                batch_bytes += stamp[0]
                if batch_bytes >= BATCH_BYTES:
                    tasks.append(batch)
                    batch, batch_bytes = [], 0
            if batch:
                tasks.append(batch)
            tasks.sort(
                key=lambda task: -sum(misses[p][2][0] for p in task)
            )  # largest first: threads finish together

            def run(task: list[int]) -> list[str]:
                return [digest_file(paths[misses[p][0]]) for p in task]

            digests = [""] * len(misses)
            with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
                for task, found in zip(tasks, pool.map(run, tasks)):
                    for position, digest in zip(task, found):
                        digests[position] = digest
        for (index, key, stamp), digest in zip(misses, digests):
            self._entries[key] = [*stamp, digest]
            results[index] = (digest, stamp[0])
        self._dirty = True

    def directory(self, root: Path) -> str:
        """The digest of a folder: every file's relative path, digest and size, in order."""
        base = str(Path(root))
        found = _scan(base)
        keys = [full for _, full in found]
        digests = self._lookup(keys, keys)
        return listing_digest(
            (rel, digest, size) for (rel, _), (digest, size) in zip(found, digests)
        )

    def path(self, path: Path) -> str:
        """Digest of a file or a directory, read once per cache instance (one build's view).

        A build digests each source when it plans and again when it writes the lock; what it
        records must be what it built, so the second look reuses the first.
        """
        key = str(path)
        if key not in self._memo:
            self._memo[key] = self.directory(path) if path.is_dir() else self.file(path)
        return self._memo[key]

    def rekey(self, old_root: str, new_root: str) -> None:
        """Move cached digests of files under old_root to new_root after a directory rename."""
        prefix = old_root.rstrip(os.sep) + os.sep
        for key in [k for k in self._entries if k.startswith(prefix)]:
            self._entries[new_root.rstrip(os.sep) + os.sep + key[len(prefix) :]] = (
                self._entries.pop(key)
            )
        self._memo.clear()
        self._dirty = True

    def save(self) -> None:
        """Write the cache back when something changed, atomically."""
        if not self._dirty or self.cache_file is None:
            return
        write_atomic(self.cache_file, json.dumps(self._entries, separators=(",", ":")))
        self._dirty = False


def digest_tree(root: Path) -> str:
    """Digest of a file or directory without any cache (store entries, verification)."""
    return DigestCache(None).path(root)
