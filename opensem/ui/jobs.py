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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opensem.errors import OpensemError, error_json
from opensem.ui.job_table import (
    ACTIVE,
    Job,
    JobState,
    JobTable,
    import_earlier_jobs,
    queue_database,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from opensem.ui.keys import KeyStore

Audit = Callable[[str, str], None]  # (action, target): what a person did, for the audit log

POLL_S = 0.2  # how often an idle worker looks for a queued job


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
        from opensem.accounts.database import open_database, sqlite_url

        self.root = project_root
        self.keys = keys  # provider keys, decrypted into a job's environment only
        self.audit = audit
        self.folder = project_root / "build" / "ui" / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        if database is None:
            fresh = not queue_database(project_root).is_file()
            database = open_database(sqlite_url(queue_database(project_root)))
            if fresh:
                import_earlier_jobs(project_root, database)
        self.engine = database
        self.table = JobTable(database, owner)
        self.table.requeue_running()
        self.lock = threading.RLock()
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

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
        with self.lock:
            found, made = self.table.add(manifest, until, cost_usd)
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

        found = self.table.select(JobRow.number == job_id)
        return found[0] if found else None

    def recent(self, manifest: str | None = None, limit: int = 50) -> list[Job]:
        """The latest jobs, newest first (of one manifest when given)."""
        from opensem.accounts.models import JobRow

        where = [] if manifest is None else [JobRow.manifest == manifest]
        return self.table.select(*where, limit=limit)

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

    def _set(self, job_id: int, state: JobState, **columns: Any) -> bool:
        """Move a job to state (and set columns); False when it was not this owner's."""
        return self.table.update(job_id, state=state, **columns)

    def _work(self) -> None:
        while not self.stopping.is_set():
            job = self._claim()
            if job is None:
                self.stopping.wait(POLL_S)
                continue
            self._run(job)

    def _claim(self) -> Job | None:
        with self.lock:
            number = self.table.claim()
        return None if number is None else self.get(number)

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
                self.table.update(job.id, pid=process.pid)
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


def _kill(process: subprocess.Popen[bytes]) -> None:
    """End a build and everything it started (its process group): TERM, then KILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
