"""A running `opensem ui` over a fresh project, and Debian's Chromium driven by Playwright.

The interface runs as the CLI starts it, in its own process; the browser records every console
error, failed request and error status, and a test fails on any of them (`browser_problems`).
Screenshots go to build/screenshots/ui/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers.ray_cluster import free_port

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "screenshots" / "ui"


@dataclass
class RunningUI:
    """An `opensem ui` process: its project, address and log."""

    root: Path
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Stop it as Ctrl+C would."""
        self.process.terminate()
        self.process.wait(timeout=60)


def start_ui(root: Path, *extra: str) -> RunningUI:
    """Start `opensem ui` on root and wait until it answers."""
    port = free_port()
    log = root / "ui.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "opensem", "ui", str(root), "--port", str(port), *extra],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/jobs", timeout=2).read()
            return RunningUI(root, url, process, log)
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"opensem ui did not start:\n{log.read_text()}")


def job_ends(root: Path, location: str, seconds: float = 300, database: str | None = None) -> str:
    """The state ("done" or "failed") the job at location (/jobs/ID) of the project at root ends in,
    read from the database the interface keeps its jobs in (the accounts database's URL when
    given: a person's job numbers are theirs, and their folder is root)."""
    from sqlalchemy import create_engine, select

    from opensem.accounts.database import sqlite_url
    from opensem.accounts.models import JobRow, User
    from opensem.ui.job_table import queue_database

    job = int(location.rsplit("/", 1)[1])
    query = select(JobRow.state).where(JobRow.number == job)
    query = (
        query.join(User, User.id == JobRow.user_id).where(User.folder == root.name)
        if database
        else query.where(JobRow.user_id.is_(None))
    )
    engine = create_engine(database or sqlite_url(queue_database(root)))
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with engine.connect() as db:
                state = db.scalar(query)
            if state in ("done", "failed"):
                return str(state)
            time.sleep(0.3)
    finally:
        engine.dispose()
    raise AssertionError(f"job {job} never finished")


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[RunningUI]:
    """`opensem ui` over an empty project (a manifests/ folder and nothing else)."""
    (tmp_path / "manifests").mkdir()
    running = start_ui(tmp_path)
    yield running
    running.stop()


def chromium_path() -> str:
    """Debian's Chromium (`.ci/run` installs it); CI fails without it, elsewhere the test skips."""
    found = os.environ.get("OPENSEM_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing: .ci/run installs it with apt-get install chromium")
    pytest.skip("no Chromium here: apt-get install chromium (as .ci/run does)")


@dataclass
class Browser:
    """A page in Chromium that remembers what went wrong in it."""

    page: Any
    problems: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot under build/screenshots/ui/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A fresh Chromium page; the test fails on any console error or failed request in it."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        watched = Browser(page)
        page.on(
            "console",
            lambda m: (
                watched.problems.append(f"console {m.type}: {m.text}")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
        page.on(
            "requestfailed",
            lambda r: (
                watched.problems.append(f"failed: {r.url} {r.failure}")
                if "/events" not in r.url  # an event stream the page closes itself is not a failure
                else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                watched.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
            ),
        )
        yield watched
        chromium.close()
