"""Many people's releases on one server: `opensem serve --accounts PROJECT`.

The server serves the published experts of every person of `opensem ui --accounts PROJECT`
(their manifests under PROJECT/users/<folder>/manifests/), each under the name its owner gave
it. A client sends an API key its owner made on their account page; the key names the owner, and
every model name in the request is looked up among that owner's releases only. Another person's
expert, its completions and its feedback answer exactly as a model that does not exist: 404 with
the same words, after the same work. Two people may both have an expert called `coffee`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from opensem.core.layout import project_root_of
from opensem.errors import Location, UsageError
from opensem.serving.releases import parse_source

if TYPE_CHECKING:
    from opensem.accounts.api_keys import ApiKeys
    from opensem.accounts.service import Accounts

SEPARATOR = "/"  # between the owner's folder and the expert's name, in the pool's names


class Tenancy:
    """Whose releases are served, and whose key a request carries."""

    def __init__(self, base: Path, accounts: Accounts) -> None:
        from opensem.accounts.api_keys import ApiKeys

        self.base = base.resolve()
        self.accounts = accounts
        self.keys: ApiKeys = ApiKeys(accounts)

    def active(self) -> set[str]:
        """The folders of the people who may be served (not disabled, not deleted)."""
        return {user.folder for user in self.accounts.users() if not user.disabled}

    def sources(self, active: set[str] | None = None) -> list[str]:
        """Every active person's manifests, as sources (those never published are skipped when
        loading)."""
        return [
            str(manifest)
            for folder in sorted(self.active() if active is None else active)
            for manifest in sorted((self.base / "users" / folder / "manifests").glob("*.yaml"))
        ]

    def owner_of(self, source: str) -> str:
        """The folder of the person a source belongs to; UsageError for a source outside every
        person's folder, or a manifest publishing outside its owner's folder."""
        _, where, _, _ = parse_source(source)
        path = Path(where).resolve()
        people = self.base / "users"
        folders = {user.folder for user in self.accounts.users()}
        if "://" in where or not path.is_relative_to(people):
            raise UsageError(
                "with --accounts every release belongs to someone: serve manifests under "
                f"{people}/<folder>/manifests/",
                Location(file=where),
                "leave SOURCES out to serve every person's published experts",
            )
        folder = path.relative_to(people).parts[0]
        if folder not in folders:
            raise UsageError(
                "this folder belongs to no one in the accounts database",
                Location(file=where),
                "check --accounts and --database name the interface's folder and database",
            )
        if path.suffix in (".yaml", ".yml"):
            self._registry_inside(path, people / folder)
        return folder

    @staticmethod
    def _registry_inside(manifest: Path, home: Path) -> None:
        raw = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
        registry = str(((raw.get("publish_target") or {}).get("registry")) or "")
        if not registry:
            return  # resolving it says it publishes nothing
        root = project_root_of(manifest)
        if "://" in registry or not (root / registry).resolve().is_relative_to(home):
            raise UsageError(
                "the manifest publishes outside its owner's folder",
                Location(file=str(manifest), key="publish_target.registry"),
                "with --accounts a person's releases are served from their own build/registry",
            )

    def caller(self, key: str) -> str | None:
        """The folder of the person whose API key this is; None for a key that is not valid."""
        user = self.keys.owner(key)
        return None if user is None else user.folder

    def is_admin(self, key: str) -> bool:
        """Whether the key is an admin's (the metrics name everyone's experts)."""
        user = self.keys.owner(key)
        return bool(user is not None and user.is_admin)


def scoped(owner: str | None, name: str) -> str:
    """The pool's name of an owner's model (the name itself without accounts)."""
    return name if owner is None else f"{owner}{SEPARATOR}{name}"


def owner_of_name(name: str) -> str:
    """The owner's folder in a pool's name (scoped)."""
    return name.split(SEPARATOR, 1)[0]


def unscoped(owner: str | None, names: list[str]) -> list[str]:
    """The names an owner sees of the pool's names: only theirs, without the owner."""
    if owner is None:
        return names
    prefix = owner + SEPARATOR
    return [name.removeprefix(prefix) for name in names if name.startswith(prefix)]
