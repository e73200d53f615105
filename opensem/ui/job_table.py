"""The build jobs as the interface's database keeps them, one owner's at a time.

Each owner's jobs are numbered 1, 2, ... of their own (the number is the id pages show), so a
job's id says nothing of anyone else's. A worker takes a queued job with a compare-and-set, so
two workers, or two interfaces on one database, never take the same one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql.elements import ColumnElement

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE: tuple[JobState, ...] = ("queued", "running")


def queue_database(project_root: Path) -> Path:
    """The SQLite file of the interface without accounts (its jobs)."""
    return project_root / "build" / "ui" / "interface.sqlite"


@dataclass(frozen=True)
class Job:
    """One build of one manifest, as the queue records it."""

    id: int
    manifest: str
    state: JobState
    created: float
    started: float | None
    finished: float | None
    exit_code: int | None
    until: str | None = None  # build only up to this stage
    cost_usd: float = 0.0  # the provider cost confirmed before it started (an upper bound)

    @property
    def seconds(self) -> float | None:
        """How long it ran (so far, while running)."""
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started


class JobTable:
    """One owner's rows of the jobs table (owner None: the interface without accounts)."""

    def __init__(self, engine: Engine, owner: int | None) -> None:
        self.engine, self.owner = engine, owner

    def _mine(self) -> ColumnElement[bool]:
        from opensem.accounts.models import JobRow

        if self.owner is None:
            return JobRow.user_id.is_(None)
        return JobRow.user_id == self.owner

    def requeue_running(self) -> None:
        """Running when the interface stopped: queued again (the build's store resumes it)."""
        from sqlalchemy import update

        from opensem.accounts.models import JobRow

        with self.engine.begin() as db:
            db.execute(
                update(JobRow)
                .where(self._mine(), JobRow.state == "running")
                .values(state="queued", pid=None)
            )

    def add(self, manifest: str, until: str | None, cost_usd: float) -> tuple[int, bool]:
        """(the job's number, whether it is new): the same build queued or running already is
        returned instead of a new one."""
        from sqlalchemy import func, insert, select

        from opensem.accounts.models import JobRow

        same = JobRow.until.is_(None) if until is None else JobRow.until == until
        with self.engine.begin() as db:
            found = db.scalar(
                select(JobRow.number).where(
                    self._mine(), JobRow.manifest == manifest, same, JobRow.state.in_(ACTIVE)
                )
            )
            if found is not None:
                return int(found), False
            number = (db.scalar(select(func.max(JobRow.number)).where(self._mine())) or 0) + 1
            db.execute(
                insert(JobRow).values(
                    user_id=self.owner,
                    number=number,
                    manifest=manifest,
                    state="queued",
                    created=time.time(),
                    until=until,
                    cost_usd=cost_usd,
                )
            )
        return number, True

    def select(self, *where: ColumnElement[bool], limit: int = 1) -> list[Job]:
        """The owner's jobs matching where, newest first."""
        from sqlalchemy import select

        from opensem.accounts.models import JobRow

        query = (
            select(JobRow.__table__)
            .where(self._mine(), *where)
            .order_by(JobRow.number.desc())
            .limit(limit)
        )
        with self.engine.connect() as db:
            rows = db.execute(query).all()
        return [_job(row) for row in rows]

    def update(self, number: int, **columns: Any) -> bool:
        """Set columns of one of the owner's jobs; False when they have no such job."""
        from sqlalchemy import update

        from opensem.accounts.models import JobRow

        with self.engine.begin() as db:
            done = db.execute(
                update(JobRow).where(self._mine(), JobRow.number == number).values(**columns)
            )
        return bool(getattr(done, "rowcount", 0))

    def claim(self) -> int | None:
        """The number of the oldest queued job, now running; None when none is queued (or
        another worker took it first)."""
        from sqlalchemy import select, update

        from opensem.accounts.models import JobRow

        with self.engine.begin() as db:
            first = db.scalar(
                select(JobRow.number)
                .where(self._mine(), JobRow.state == "queued")
                .order_by(JobRow.number)
                .limit(1)
            )
            if first is None:
                return None
            taken = db.execute(
                update(JobRow)
                .where(self._mine(), JobRow.number == first, JobRow.state == "queued")
                .values(state="running", started=time.time(), finished=None, exit_code=None)
            )
        return int(first) if getattr(taken, "rowcount", 0) else None


def import_earlier_jobs(project_root: Path, engine: Engine) -> None:
    """The jobs of an interface from before the jobs moved into its database (build/ui/jobs.sqlite)."""
    import sqlite3

    from sqlalchemy import insert

    from opensem.accounts.models import JobRow

    earlier = project_root / "build" / "ui" / "jobs.sqlite"
    if not earlier.is_file():
        return
    wanted = ("id", "manifest", "state", "created", "started", "finished", "exit_code", "until")
    with sqlite3.connect(earlier) as old:
        present = {row[1] for row in old.execute("PRAGMA table_info(jobs)")}
        columns = [name for name in wanted if name in present]
        rows = old.execute(f"SELECT {', '.join(columns)} FROM jobs").fetchall()
    if rows:
        with engine.begin() as db:
            db.execute(
                insert(JobRow), [{**dict(zip(columns, row)), "number": row[0]} for row in rows]
            )
    earlier.rename(earlier.with_suffix(".sqlite.imported"))


def _job(row: Any) -> Job:
    return Job(
        row.number,
        row.manifest,
        row.state,
        row.created,
        row.started,
        row.finished,
        row.exit_code,
        row.until,
        row.cost_usd,
    )
