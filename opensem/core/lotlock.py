"""One builder per lot at a time, across the processes of one machine.

Before a stage runs, its build takes an exclusive lock on build/store/.locks/<lot>.lock (flock)
and writes who holds it. A second build reaching the same lot waits, says whose build it waits
for, and then finds the result in the store and reuses it. The kernel drops a lock when its
process dies, however it dies, so a killed build never leaves a lot locked; the record it left
("running") tells the next holder that it is taking over an abandoned attempt.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _read(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        record = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _write(fd: int, record: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(record, sort_keys=True).encode())


def describe(holder: dict[str, Any] | None) -> str:
    """Who holds a lot, for a message: the build, its pid, host and start."""
    if not holder:
        return "another build"
    return (
        f"{holder.get('who', 'a build')} (pid {holder.get('pid')} on {holder.get('host')}, since "
        f"{holder.get('since')})"
    )


@contextlib.contextmanager
def lot_lock(
    folder: Path, lot: str, who: str, on_wait: Callable[[dict[str, Any] | None], None]
) -> Iterator[dict[str, Any] | None]:
    """Hold lot's lock for the body; yields the record of an abandoned earlier holder, or None."""
    try:
        import fcntl
    # No flock on this platform: the store's atomic rename still keeps entries whole
    except ImportError:
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{lot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(_read(fd))
            fcntl.flock(fd, fcntl.LOCK_EX)
        previous = _read(fd)
        abandoned = previous if previous and previous.get("state") == "running" else None
        since = time.strftime("%H:%M:%S")
        _write(
            fd,
            {
                "who": who,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": since,
                "state": "running",
            },
        )
        try:
            yield abandoned
        finally:
            _write(
                fd,
                {
                    "who": who,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": since,
                    "state": "done",
                },
            )
    finally:
        os.close(fd)  # closing drops the flock
