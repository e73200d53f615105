"""The browser interface's build queue: jobs kept in a database, run one at a time by default.

A job builds one manifest as `python -m opensem build MANIFEST --json` in its own process group,
so a crash or an out-of-memory kill of a build never takes the interface down, and cancelling is
killing the group. The jobs live in the interface's database (build/ui/interface.sqlite), or in
the accounts database under `opensem ui --accounts`, each with its owner: a queue sees and runs
only its owner's. The build engine's events (one JSON object per line) go to
build/ui/jobs/ID.jsonl, which the pages read and stream (the CLI's last line on a failure is the
error with its location and hint); what the build logs goes to ID.log. A job survives a restart
of the interface: one that was running is queued again and resumes through the build's own store
(what was built is up to date).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from opensem.errors import OpensemError, error_json

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.sql.elements import ColumnElement

    from opensem.ui.keys import KeyStore

Audit = Callable[[str, str], None]  # (action, target): what a person did, for the audit log

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE: tuple[JobState, ...] = ("queued", "running")
POLL_S = 0.2  # how often an idle worker looks for a queued job


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


class JobQueue:
    """One owner's jobs, and the worker threads that run them."""

    def __init__(
        self,
        project_root: Path,
        workers: int = 1,
        keys: KeyStore | None = None,
        audit: Audit | None = None,
        database: Engine | None = None,
        owner: int | None = None,
    ) -> None:
        from sqlalchemy import update

        from opensem.accounts.database import open_database, sqlite_url
        from opensem.accounts.models import JobRow

        self.root = project_root
        self.keys = keys  # provider keys, decrypted into a job's environment only
        self.audit = audit
        self.folder = project_root / "build" / "ui" / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.owner = owner
        if database is None:
            fresh = not queue_database(project_root).is_file()
            database = open_database(sqlite_url(queue_database(project_root)))
            if fresh:
                _import_earlier_jobs(project_root, database)
        self.engine = database
        self.lock = threading.RLock()
        # Running when the interface stopped: queued again, the build's store resumes it.
        with self.engine.begin() as db:
            db.execute(
                update(JobRow)
                .where(self._mine(), JobRow.state == "running")
                .values(state="queued", pid=None)
            )
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def _mine(self) -> ColumnElement[bool]:
        from opensem.accounts.models import JobRow

        if self.owner is None:
            return JobRow.user_id.is_(None)
        return JobRow.user_id == self.owner

    def start(self) -> None:
        """Start the workers."""
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"opensem-job-{number}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        """Stop taking jobs; builds running now are cancelled back to queued (they resume)."""
        self.stopping.set()
        with self.lock:
            running = list(self.processes.items())
        for _, process in running:
            _kill(process)
        for thread in self.threads:
            thread.join(timeout=10)

    def submit(self, manifest: str, until: str | None = None, cost_usd: float = 0.0) -> Job:
        """Queue a build of a manifest (its path relative to the project), up to a stage when
        until is given; the same build already queued or running is returned instead."""
        from sqlalchemy import func, insert, select

        from opensem.accounts.models import JobRow

        same = JobRow.until.is_(None) if until is None else JobRow.until == until
        made = False
        with self.lock, self.engine.begin() as db:
            found = db.scalar(
                select(JobRow.number).where(
                    self._mine(), JobRow.manifest == manifest, same, JobRow.state.in_(ACTIVE)
                )
            )
            if found is None:
                made = True
                last = db.scalar(select(func.max(JobRow.number)).where(self._mine()))
                found = (last or 0) + 1
                db.execute(
                    insert(JobRow).values(
                        user_id=self.owner,
                        number=found,
                        manifest=manifest,
                        state="queued",
                        created=time.time(),
                        until=until,
                        cost_usd=cost_usd,
                    )
                )
        # After the commit: the audit log may live in the same database
        if made and self.audit is not None:
            cost = f", up to ${cost_usd:.2f} at providers" if cost_usd else ""
            upto = f" up to {until}" if until else ""
            self.audit("job", f"#{found} {manifest}{upto}{cost}")
        job = self.get(int(found))
        assert job is not None
        return job

    def get(self, job_id: int) -> Job | None:
        """One of this owner's jobs by id (another owner's is not found)."""
        from opensem.accounts.models import JobRow

        found = self._select(JobRow.number == job_id)
        return found[0] if found else None

    def recent(self, manifest: str | None = None, limit: int = 50) -> list[Job]:
        """The latest jobs, newest first (of one manifest when given)."""
        from opensem.accounts.models import JobRow

        where = [] if manifest is None else [JobRow.manifest == manifest]
        return self._select(*where, limit=limit)

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job; False when it had already ended."""
        with self.lock:
            job = self.get(job_id)
            if job is None or job.state not in ACTIVE:
                return False
            self._set(job_id, "cancelled", finished=time.time())
            process = self.processes.get(job_id)
        if process is not None:
            _kill(process)
        return True

    def events(self, job_id: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The job's events from a byte offset on, and the offset after the last whole line."""
        path = self.events_file(job_id)
        if not path.is_file():
            return [], offset
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        found = []
        for line in complete.splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                found.append({"event": "output", "detail": line.decode("utf-8", "replace")})
        return found, offset + len(complete)

    def log_tail(self, job_id: int, lines: int = 40) -> str:
        """The end of a job's log (the build's warnings and library messages)."""
        path = self.folder / f"{job_id}.log"
        if not path.is_file():
            return ""
        text = path.read_bytes()[-64 * 1024 :].decode("utf-8", "replace")
        return "\n".join(line.rstrip() for line in text.splitlines()[-lines:])

    def events_file(self, job_id: int) -> Path:
        """Where a job's events are written."""
        return self.folder / f"{job_id}.jsonl"

    def _select(self, *where: ColumnElement[bool], limit: int = 1) -> list[Job]:
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

    def _set(self, job_id: int, state: JobState, **columns: Any) -> bool:
        """Move a job to state (and set columns); False when it was not this owner's."""
        from sqlalchemy import update

        from opensem.accounts.models import JobRow

        with self.engine.begin() as db:
            done = db.execute(
                update(JobRow)
                .where(self._mine(), JobRow.number == job_id)
                .values(state=state, **columns)
            )
        return bool(getattr(done, "rowcount", 0))

    def _record_pid(self, job_id: int, pid: int) -> None:
        from sqlalchemy import update

        from opensem.accounts.models import JobRow

        with self.engine.begin() as db:
            db.execute(update(JobRow).where(self._mine(), JobRow.number == job_id).values(pid=pid))

    def _work(self) -> None:
        while not self.stopping.is_set():
            job = self._claim()
            if job is None:
                self.stopping.wait(POLL_S)
                continue
            self._run(job)

    def _claim(self) -> Job | None:
        """The oldest queued job, now running; taken with a compare-and-set, so two workers
        (or two interfaces on one database) never take the same job."""
        from sqlalchemy import select, update

        from opensem.accounts.models import JobRow

        with self.lock, self.engine.begin() as db:
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
        if not getattr(taken, "rowcount", 0):
            return None
        return self.get(int(first))

    def _run(self, job: Job) -> None:
        command = [sys.executable, "-m", "opensem", "build", job.manifest, "--json"]
        command += ["--until", job.until] if job.until else []
        log_file = self.folder / f"{job.id}.log"
        try:
            keys = self.keys.environment(Path(job.manifest).stem) if self.keys else {}
        except OpensemError as error:
            with self.events_file(job.id).open("a", encoding="utf-8") as out:
                out.write(json.dumps(error_json(error, 2)) + "\n")
            self._set(job.id, "failed", finished=time.time(), exit_code=2)
            return
        with self.events_file(job.id).open("ab") as out, log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=self.root,
                stdout=out,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **keys, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
            )
            with self.lock:
                self.processes[job.id] = process
                self._record_pid(job.id, process.pid)
            code = process.wait()
        with self.lock:
            self.processes.pop(job.id, None)
            current = self.get(job.id)
            if current is None or current.state != "running":
                return  # cancelled meanwhile
            if self.stopping.is_set():  # the interface is stopping: resume on the next start
                self._set(job.id, "queued", started=None)
            else:
                state: JobState = "done" if code == 0 else "failed"
                self._set(job.id, state, finished=time.time(), exit_code=code)
        if self.audit is not None:
            events, _ = self.events(job.id)
            for event in events:
                if event.get("event") == "built" and event.get("stage") == "publish":
                    self.audit("publish", f"{job.manifest}: {event.get('detail', '')}")


def _import_earlier_jobs(project_root: Path, engine: Engine) -> None:
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


def _kill(process: subprocess.Popen[bytes]) -> None:
    """End a build and everything it started (its process group): TERM, then KILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
