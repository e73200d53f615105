"""Data sources beyond plain paths: globs inside the project, and fsspec URLs anywhere.

A glob (`data/**/*.md`) is planned as its fixed base folder (`data/`), digested like any folder,
with the pattern passed to ingest, which reads only the matching files. The base folder's digest
may change for a file the pattern skips; ingest then reruns, writes the same bytes, and early
cutoff stops the rebuild there.

A URL (`s3://bucket/docs/`, `https://host/file.pdf`, `memory://...`) is not a local path, so the
digest cache cannot read it. Planning lists it once with fsspec, without downloading anything, and
digests the listing: each file's relative path, size and fsspec `ukey` (the backend's change
token: ETag on S3 and HTTP, mtime locally). That fingerprint enters ingest's params, so the lot
changes exactly when the remote files do; ingest downloads the files and refuses to go on if the
listing changed between planning and reading.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import Field

from opensem.core.digests import canonical_json, sha256_text
from opensem.data.formats import FORMATS
from opensem.settings.fields import Section

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
GLOB_CHARS = frozenset("*?[")
DatasetFormat = Literal[("auto", *FORMATS)]  # type: ignore[valid-type]


class DataSource(Section):
    """One entry of `data.sources`."""

    path: str = Field(
        description=(
            "File, directory or glob (data/**/*.md) relative to the project root, or an fsspec URL "
            "(s3://bucket/docs/)."
        )
    )
    format: DatasetFormat = Field(
        "auto", description="Dataset format of .jsonl/.json files; auto detects it."
    )


class SourceSpec(DataSource):
    """A source as ingest reads it: the manifest's entry, and where planning found its files."""

    slot: str | None = None  # the input slot of a local file, folder or glob base; None for a URL
    pattern: str | None = None  # a glob relative to the project root: only matching files are read
    remote: str | None = None  # a URL's listing fingerprint; path is the URL


def is_url(path: str) -> bool:
    """Whether a source is a URL (fsspec) rather than a project path."""
    return bool(_URL.match(path))


def is_glob(path: str) -> bool:
    """Whether a project path is a glob pattern."""
    return not is_url(path) and any(c in GLOB_CHARS for c in path)


def glob_base(pattern: str) -> str:
    """The longest leading folder of a glob without wildcards ('.' when the first part has one)."""
    parts: list[str] = []
    for part in PurePosixPath(pattern).parts:
        if any(c in GLOB_CHARS for c in part):
            break
        parts.append(part)
    return PurePosixPath(*parts).as_posix() if parts else "."


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a posix glob: `**` spans folders, `*` and `?` stay within one, `[...]` is a class."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:[^/]+/)*"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def glob_matches(project_root: Path, pattern: str) -> list[Path]:
    """Files under the project matching a glob relative to its root, sorted."""
    from opensem.core.digests import walk_files

    base = project_root / glob_base(pattern)
    if not base.is_dir():
        return [base] if base.is_file() and glob_regex(pattern).match(glob_base(pattern)) else []
    regex = glob_regex(pattern)
    return [f for f in walk_files(base) if regex.match(f.relative_to(project_root).as_posix())]


def open_url(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a URL; credentials come from the environment."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def remote_listing(url: str) -> list[tuple[str, int, str]]:
    """[(relative path, size, change token)] of the files at a URL (one file, or a folder's tree)."""
    fs, root = open_url(url)
    fs.invalidate_cache()  # a long-lived filesystem instance must not answer from an old listing
    info = fs.info(root)
    if info.get("type") == "directory":
        found = fs.find(root, detail=True)
        files = sorted(
            (name, entry) for name, entry in found.items() if entry.get("type") != "directory"
        )
        base = root.rstrip("/") + "/"
        return [
            (
                name[len(base) :] if name.startswith(base) else name,
                int(entry.get("size") or 0),
                str(fs.ukey(name)),
            )
            for name, entry in files
        ]
    return [(PurePosixPath(root).name, int(info.get("size") or 0), str(fs.ukey(root)))]


def remote_fingerprint(url: str) -> str:
    """Digest of a URL's listing: changes when a file is added, removed, resized or rewritten."""
    listing = remote_listing(url)
    if not listing:
        raise FileNotFoundError(f"no files at {url}")
    return sha256_text(canonical_json(listing))


def fetch(url: str, destination: Path) -> tuple[list[Path], str]:
    """Download the files at a URL below destination; returns them (sorted) and the listing's
    fingerprint as read now, so the caller can check it against the planned one."""
    fs, root = open_url(url)
    listing = remote_listing(url)
    single = fs.info(root).get("type") != "directory"
    files: list[Path] = []
    for relative, _, _ in listing:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(root if single else f"{root.rstrip('/')}/{relative}", str(target))
        files.append(target)
    return sorted(files), sha256_text(canonical_json(listing))
