"""The adapter registry over fsspec: a local folder, file://, s3://, or anything fsspec speaks.

Layout: <registry>/<job_id>/<tag>/ holds the published files and files.json (each file's digest);
<registry>/<job_id>/index.json maps tag -> {lot, digest}. The index is written last, so it only
ever names complete uploads. A tag is immutable: publishing a different lot under it is refused.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path
from typing import Any

from opensem.core.digests import digest_file, listing_digest
from opensem.errors import Location, RegistryError

INDEX = "index.json"
FILES = "files.json"


def open_registry(url: str, project_root: Path) -> tuple[Any, str]:
    """(filesystem, root path) of a registry URL; a plain path is relative to the project root."""
    import fsspec

    if "://" not in url:
        url = str((project_root / url).resolve())
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise RegistryError(
            f"cannot open registry {url!r}: {exc}",
            Location(key="publish_target.registry"),
            "install the fsspec backend for this URL (for s3://: pip install 'opensem[s3]')",
        ) from None
    return fs, root.rstrip("/")


def read_index(fs: Any, root: str, job_id: str) -> dict[str, Any]:
    """The registry's index of a job: its tags and their lots (empty when new)."""
    path = posixpath.join(root, job_id, INDEX)
    if not fs.exists(path):
        return {"job_id": job_id, "tags": {}}
    with fs.open(path, "rb") as handle:
        return json.loads(handle.read())


def publish_files(
    fs: Any,
    root: str,
    job_id: str,
    tag: str,
    lot: str,
    files: dict[str, Path],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Upload files under <job_id>/<tag>/ and record the tag; returns the receipt (digests)."""
    index = read_index(fs, root, job_id)
    digests = {name: digest_file(path) for name, path in sorted(files.items())}
    digest = listing_digest((name, digests[name], files[name].stat().st_size) for name in digests)
    existing = index["tags"].get(tag)
    if existing is not None and existing["lot"] != lot:
        raise RegistryError(
            f"tag {tag!r} of {job_id} is already published with lot {existing['lot'][:12]}; this build is lot "
            f"{lot[:12]}",
            Location(key="publish_target.tag"),
            "tags are immutable: bump publish_target.tag, or use a tag with `{lot}` in it for development builds",
        )
    folder = posixpath.join(root, job_id, tag)
    for name, path in sorted(files.items()):
        target = posixpath.join(folder, name)
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        fs.put_file(str(path), target)
    _write_json(fs, posixpath.join(folder, FILES), {"lot": lot, "digest": digest, "files": digests})
    index["tags"][tag] = {"lot": lot, "digest": digest, **extra}
    _write_json(fs, posixpath.join(root, job_id, INDEX), index)
    return {"tag": tag, "lot": lot, "digest": digest, "files": digests}


def _write_json(fs: Any, path: str, data: dict[str, Any]) -> None:
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as handle:
        handle.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def check_published(fs: Any, root: str, job_id: str, tag: str, lot: str, digest: str) -> list[str]:
    """Mismatches between what the lock says was published and what the registry holds."""
    entry = read_index(fs, root, job_id)["tags"].get(tag)
    if entry is None:
        return [f"registry has no tag {tag!r} for {job_id}"]
    problems = []
    if entry.get("lot") != lot:
        problems.append(
            f"registry tag {tag!r} holds lot {str(entry.get('lot'))[:12]}, the lock says {lot[:12]}"
        )
    folder = posixpath.join(root, job_id, tag)
    recorded = json.loads(fs.cat_file(posixpath.join(folder, FILES)))["files"]
    sizes = []
    for name, want in sorted(recorded.items()):
        path = posixpath.join(folder, name)
        if not fs.exists(path):
            problems.append(f"registry file {name} is missing")
            continue
        data = fs.cat_file(path)
        got = hashlib.sha256(data).hexdigest()
        sizes.append((name, got, len(data)))
        if got != want:
            problems.append(
                f"registry file {name} was modified (sha256 {got[:12]}, expected {want[:12]})"
            )
    if not problems and listing_digest(sizes) != digest:
        problems.append(f"registry tag {tag!r} content digest differs from the lock")
    return problems


def pull(fs: Any, root: str, job_id: str, tag: str, dest: Path) -> dict[str, Any]:
    """Download a published tag into dest, checking every file's digest."""
    entry = read_index(fs, root, job_id)["tags"].get(tag)
    if entry is None:
        raise RegistryError(
            f"registry has no tag {tag!r} for {job_id}", hint="list tags with `opensem pull --list`"
        )
    folder = posixpath.join(root, job_id, tag)
    recorded = json.loads(fs.cat_file(posixpath.join(folder, FILES)))["files"]
    for name, want in sorted(recorded.items()):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(posixpath.join(folder, name), str(target))
        if digest_file(target) != want:
            raise RegistryError(
                f"pulled file {name} does not match its recorded digest",
                hint="the registry copy is damaged; republish it",
            )
    return entry


def point_at_shipped_base(dest: Path) -> bool:
    """Make a pulled adapter name the base it ships with (base_model/model) by absolute path, so
    peft's AutoPeftModelForCausalLM.from_pretrained(dest / "adapter") loads it with no model card.
    A release whose base is a hub id already names it. True when the adapter was repointed."""
    config_file, base = dest / "adapter" / "adapter_config.json", dest / "base_model" / "model"
    if not (config_file.is_file() and base.is_dir()):
        return False
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(base.resolve())
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return True


def pull_checked(
    registry: str, project_root: Path, tag: str, digest: str, dest: Path, who: str
) -> Path:
    """Pull a release (registry = the expert's folder) into dest and check it is, byte for byte, the
    release whose digest was read from the index while planning; DataError otherwise."""
    import shutil

    from opensem.errors import DataError, Location

    shutil.rmtree(dest, ignore_errors=True)
    fs, folder = open_registry(registry, project_root)
    entry = pull(fs, posixpath.dirname(folder), posixpath.basename(folder), tag, dest)
    if entry.get("digest") != digest or local_release_digest(dest) != digest:
        raise DataError(
            f"{who}: release {posixpath.basename(folder)}:{tag} does not match its index (planned digest "
            f"{digest[:12]})",
            Location(file=f"{registry}/{tag}"),
            hint="the registry copy changed or is damaged; plan again, or republish the release",
        )
    return dest


def published_problems(
    registry: str, project_root: Path, job_id: str, published: dict[str, Any]
) -> list[str]:
    """What `verify` finds wrong with a tag the lock says was published (empty when it agrees)."""
    from opensem.errors import OpensemError

    try:
        fs, root = open_registry(registry, project_root)
        problems = check_published(
            fs, root, job_id, published["tag"], published["lot"], published["digest"]
        )
    except (OSError, OpensemError, ValueError, KeyError) as exc:
        return [f"publish: registry {registry} cannot be checked: {exc}"]
    return [f"publish: {p}" for p in problems]


def local_release_digest(folder: Path) -> str:
    """The registry's digest of a pulled release folder: every file but files.json, as publish computed it."""
    from opensem.core.digests import walk_files

    files = [f for f in walk_files(folder) if f != folder / FILES]
    return listing_digest(
        (f.relative_to(folder).as_posix(), digest_file(f), f.stat().st_size) for f in files
    )


def unpublish(fs: Any, root: str, job_id: str, tag: str) -> None:
    """Remove a tag: first from the index (so nothing pulls it while it goes), then its files."""
    index = read_index(fs, root, job_id)
    if index["tags"].pop(tag, None) is None:
        raise RegistryError(f"registry has no tag {tag!r} for {job_id}")
    _write_json(fs, posixpath.join(root, job_id, INDEX), index)
    folder = posixpath.join(root, job_id, tag)
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
