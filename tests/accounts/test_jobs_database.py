"""The build queue on the accounts database, SQLite and PostgreSQL alike: a worker claims a
person's queued job, runs it and records how it ended; another person's queue never sees it."""

from __future__ import annotations

import time
from pathlib import Path

from opensem.accounts.database import open_database
from opensem.accounts.service import Accounts
from opensem.ui.jobs import JobQueue


def test_a_persons_job_runs_to_its_end_in_their_queue_only(
    database_url: str, tmp_path: Path
) -> None:
    accounts = Accounts(open_database(database_url))
    ana, _ = accounts.sign_in(accounts.request_link("ana@example.org", "a"), "a")
    bo, _ = accounts.sign_in(accounts.request_link("bo@example.org", "b"), "b")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "broken.yaml").write_text("job_id: broken\nbase_model: 7\n")
    theirs = JobQueue(tmp_path / "bo", database=accounts.engine, owner=bo.id)
    theirs.start()  # an idle worker of Bo's: it must not take Ana's job
    mine = JobQueue(tmp_path, database=accounts.engine, owner=ana.id)
    job = mine.submit("manifests/broken.yaml")
    mine.start()
    try:
        deadline = time.monotonic() + 60
        while (found := mine.get(job.id)) is not None and found.state in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        mine.stop()
        theirs.stop()
    assert found is not None and (found.state, found.exit_code) == ("failed", 2)
    assert found.started is not None and found.finished is not None
    assert (
        theirs.recent() == []
        and not (tmp_path / "bo" / "build" / "ui" / "jobs" / "1.jsonl").exists()
    )
    assert '"ManifestError"' in (tmp_path / "build" / "ui" / "jobs" / "1.jsonl").read_text()
