"""Where people's projects live under the folder `opensem ui --accounts` serves, and removing a
person with everything of theirs (the admin page and `opensem accounts delete` both do it)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from opensem.core.files import tally

if TYPE_CHECKING:
    from opensem.accounts.models import User
    from opensem.accounts.service import Accounts


def default_database(base: Path) -> Path:
    """The SQLite file accounts live in when no database URL is given."""
    return base / "build" / "ui" / "accounts.sqlite"


def home(base: Path, user: User) -> Path:
    """A person's own project folder."""
    return base / "users" / user.folder


def remove_person(
    accounts: Accounts, base: Path, user: User, by: int | None = None
) -> tuple[int, int]:
    """Delete someone's account and sessions, then their whole folder (documents, data,
    feedback, store, releases, keys); the (files, bytes) removed."""
    folder = home(base, user)
    removed = tally(folder)
    accounts.delete_user(user.id, by)
    shutil.rmtree(folder, ignore_errors=True)
    return removed
