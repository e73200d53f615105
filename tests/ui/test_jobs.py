"""The build queue: a failure keeps the CLI's error and hint, a cancel ends the whole build, one
build of a manifest at a time, and jobs survive a restart of the interface."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update

from opensem.accounts.models import JobRow
from opensem.ui.job_table import Job
from opensem.ui.jobs import JobQueue
from tests.cli import run_cli
from tests.e2e.conftest import REPO


def _until(check: Callable[[], Job | None], seconds: float = 120) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError("the job never got there")


def _project(root: Path) -> Path:
    (root / "manifests").mkdir()
    shutil.copy(REPO / "manifests" / "tiny-demo.yaml", root / "manifests")
    shutil.copytree(REPO / "data" / "tiny-demo", root / "data" / "tiny-demo")
    return root


def test_a_failed_build_keeps_the_error_location_and_hint(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "broken.yaml").write_text("job_id: broken\nbase_model: 7\n")
    queue = JobQueue(tmp_path)
    queue.start()
    try:
        job = queue.submit("manifests/broken.yaml")
        done = _until(lambda: j if (j := queue.get(job.id)) and j.state == "failed" else None)
    finally:
        queue.stop()
    assert done.exit_code == 2
    events, _ = queue.events(job.id)
    error = events[-1]
    assert error["event"] == "error" and error["kind"] == "ManifestError"
    assert "broken.yaml" in error["location"] and error["hint"]


def test_cancel_ends_the_build_and_every_process_it_started(tmp_path: Path) -> None:
    queue = JobQueue(_project(tmp_path))
    queue.start()
    try:
        job = queue.submit("manifests/tiny-demo.yaml")
        assert queue.submit("manifests/tiny-demo.yaml").id == job.id  # one build at a time
        _until(lambda: queue.get(job.id) if queue.events(job.id)[0] else None)
        with queue.engine.connect() as db:
            pid = db.execute(select(JobRow.pid).where(JobRow.number == job.id)).scalar_one()
        assert queue.cancel(job.id)
        assert not queue.cancel(job.id)  # already over
        with pytest.raises(ProcessLookupError):
            _until(lambda: None if _alive(pid) else queue.get(job.id), 30)
            os.killpg(pid, 0)
    finally:
        queue.stop()
    ended = queue.get(job.id)
    assert ended is not None and ended.state == "cancelled" and ended.finished is not None


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_running_job_is_queued_again_after_a_restart(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    first = JobQueue(tmp_path)
    job = first.submit("manifests/a.yaml")
    with first.engine.begin() as db:
        db.execute(update(JobRow).where(JobRow.number == job.id).values(state="running", started=1))
    again = JobQueue(tmp_path)  # the interface starts again; no worker runs yet
    restarted = again.get(job.id)
    assert restarted is not None and restarted.state == "queued"
    assert again.submit("manifests/a.yaml").id == job.id


def test_the_cli_refuses_to_listen_beyond_this_machine_without_accounts(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    code, output = run_cli("ui", str(tmp_path), "--host", "0.0.0.0")
    assert code == 2
    assert "listens only on this machine" in output and "--unsafe-no-accounts" in output
    code, output = run_cli("ui", str(tmp_path / "nothing"))
    assert code == 2 and "not an opensem project" in output


def test_jobs_of_an_earlier_interface_are_kept(tmp_path: Path) -> None:
    import sqlite3

    (tmp_path / "build" / "ui").mkdir(parents=True)
    earlier = tmp_path / "build" / "ui" / "jobs.sqlite"
    with sqlite3.connect(earlier) as db:  # the table as interfaces before the database made it
        db.execute(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY, manifest TEXT NOT NULL, state TEXT NOT "
            "NULL, created REAL NOT NULL, started REAL, finished REAL, exit_code INTEGER, pid "
            "INTEGER)"
        )
        db.execute("INSERT INTO jobs VALUES (7, 'manifests/a.yaml', 'done', 1, 2, 3, 0, NULL)")
    queue = JobQueue(tmp_path)
    kept = queue.get(7)
    assert kept is not None and (kept.state, kept.exit_code, kept.until) == ("done", 0, None)
    assert not earlier.exists() and earlier.with_suffix(".sqlite.imported").exists()
    assert queue.submit("manifests/a.yaml").id == 8
