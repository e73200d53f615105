"""An engine for a database URL with its schema at the newest migration.

SQLite (a file of the project, the default) or PostgreSQL (`postgresql+psycopg://...`); the schema
is made and upgraded only by alembic's migrations in migrations/, so both databases, and every
older one, end with the same tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from opensem.errors import Location, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite file."""
    return f"sqlite:///{path}"


def open_database(url: str) -> Engine:
    """An engine for url, upgraded to the newest schema."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ModuleNotFoundError) as error:
        raise UsageError(
            f"not a database URL opensem can use: {error}",
            Location(key="database"),
            "use sqlite:///path/to/file.sqlite or postgresql+psycopg://user@host/name",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_foreign_keys)
    try:
        upgrade(engine)
    except OperationalError as error:
        raise UsageError(
            f"cannot reach the database: {error.orig}",
            Location(key="database"),
            "check the URL, that the server runs and that the user may create tables",
        ) from None
    return engine


def _sqlite_foreign_keys(connection: object, _record: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def upgrade(engine: Engine) -> None:
    """Run every migration the database has not had yet."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
