"""Commands on the shared stage cache and the local store: push, pull --cache, gc."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from opensem.cli import cli, manifest_argument, session_for
from opensem.console import console, escape
from opensem.errors import UsageError


def _remote(session: Any) -> Any:
    if session.remote is None:
        raise UsageError(
            "no shared stage cache is configured",
            hint="add `cache: {url: s3://bucket/prefix, mode: read-write}` to the manifest, or set OPENSEM_CACHE",
        )
    return session.remote


@cli.command()
@manifest_argument
def push(manifest: Path) -> None:
    """Upload every stage result the manifest's lock records to the shared stage cache.

    Needs a read-write cache (`cache.mode: read-write` or OPENSEM_CACHE_MODE=read-write).
    """
    from opensem.core.lock import lots_of_lock
    from opensem.core.remote import push_lots

    session = session_for(manifest)
    remote = _remote(session)
    if not remote.writable:
        raise UsageError(
            f"the cache {remote.url} is read-only here",
            hint="set cache.mode: read-write (or OPENSEM_CACHE_MODE=read-write) where pushing is wanted, e.g. in CI",
        )
    lots = lots_of_lock(session.previous_lock)
    if not lots:
        raise UsageError(
            f"{session.lock_file.name} records no stages",
            hint="build first: opensem build " + str(manifest),
        )
    uploaded, present, missing = push_lots(remote, session.store, lots)
    for name in missing:
        console.print(f"  [yellow]![/] {name:<13} not in the local store; build it first")
    console.print(
        f"pushed {len(uploaded)} stage(s) to {escape(remote.url)}, {len(present)} already there, {len(missing)} "
        "missing locally"
    )


def pull_from_cache(session: Any) -> None:
    """`opensem pull --cache`: the lock's stages from the shared cache into the local store."""
    from opensem.core.lock import lots_of_lock
    from opensem.core.remote import pull_lots

    remote = _remote(session)
    lots = lots_of_lock(session.previous_lock)
    if not lots:
        raise UsageError(
            f"{session.lock_file.name} records no stages to pull",
            hint="commit the lock with the manifest, or run `opensem build` (it takes every stage the cache has)",
        )
    results = pull_lots(remote, session.store, session.digests, lots)
    session.digests.save()
    for name, found in results.items():
        mark = {"hit": "[green]✓[/]", "miss": "[dim]-[/]", "corrupt": "[yellow]![/]"}[found.status]
        what = (
            "in the local store"
            if found.reason == "local"
            else {
                "hit": "pulled",
                "miss": "not in the cache",
                "corrupt": f"unusable: {found.reason}",
            }[found.status]
        )
        console.print(f"  {mark} {name:<13} {escape(what)}")
    hits = sum(found.status == "hit" for found in results.values())
    console.print(
        f"{hits} of {len(results)} stages in the local store; `opensem build` builds the rest"
    )


@cli.command()
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    show_default=True,
    help="Project root.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def gc(root: Path, dry_run: bool) -> None:
    """Remove local store entries that no lock file of the project refers to.

    Locks are manifests/*.lock (and *.lock at the project root); an entry they do not record is a
    result of settings tried and left. Its scratch folder goes too, and staging folders of builds
    killed a day or more ago.
    """
    from opensem.core.gc import collect
    from opensem.core.layout import Layout

    layout = Layout(root.resolve())
    found = collect(layout.store, layout.project_root, layout.build / "work", dry_run)
    verb = "would remove" if dry_run else "removed"
    for lot, size in found.entries:
        console.print(f"  {verb} {lot[:12]}  {size / 2**20:8.1f} MiB")
    console.print(
        f"{verb} {len(found.entries)} entries ({found.bytes / 2**20:.1f} MiB) and {len(found.staging)} abandoned "
        f"staging folders; kept {found.kept}"
    )
