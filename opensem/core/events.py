"""What a build reports, as typed events: the build core emits them and never prints.

A reporter receives them: the CLI's Rich lines (opensem.console.RichReporter), `opensem build
--json` (one JSON object per line, JsonReporter), a browser's live view, or a test's list. The
names in EVENTS are stable: a JSON consumer may rely on them.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Literal, Protocol

from opensem.core.stage import Progress, silent_progress

EventName = Literal[
    "planned",  # a manifest's build begins; detail: its stages
    "connected",  # stages run on a cluster; detail: which, with its resources
    "lock-damaged",  # the lock could not be read: planning goes on as if there were none
    "store-modified",  # a store entry no longer matches its digest: dropped and rebuilt
    "up-to-date",  # the store holds the lot (detail says when another build made it meanwhile)
    "from-cache",  # taken from the shared stage cache
    "cache-unusable",  # a shared cache entry was corrupt or unreadable: built here instead
    "not-uploaded",  # a built entry could not be given to the shared cache (the build goes on)
    "waiting",  # another build holds this lot's lock
    "taking-over",  # a build that held the lot stopped before finishing it
    "started",  # the stage runs; detail: why it is stale
    "progress",  # long work inside a stage: done of total
    "measured",  # a figure a stage measured as it worked; detail: its name, done: step, value
    "built",  # the stage made its lot; detail: its summary
    "failed",  # the stage failed; detail: the error
    "finished",  # the manifest's build ended; detail: what was built, seconds: how long
]
EVENTS: tuple[str, ...] = EventName.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class BuildEvent:
    event: EventName
    job: str
    stage: str | None = None
    lot: str | None = None
    detail: str = ""
    seconds: float | None = None
    done: int | None = None  # progress (and the step of a measurement)
    total: int | None = None
    value: float | None = None  # measured only
    at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        """The event as one JSON object, empty fields left out."""
        return {
            key: value for key, value in asdict(self).items() if value is not None and value != ""
        }


class Reporter(Protocol):
    def report(self, event: BuildEvent) -> None:
        """Receive one build event."""

    def progress(self, job: str, stage: str, description: str, total: int | None) -> Progress:
        """A handle for long work inside a stage (training steps, records embedded)."""
        ...


class LogReporter:
    """The default: events as log records of the `opensem.build` logger (plain doit, libraries)."""

    log = logging.getLogger("opensem.build")

    def report(self, event: BuildEvent) -> None:
        """Log the event on one line."""
        where = f"{event.job}:{event.stage}" if event.stage else event.job
        if event.event == "measured":  # many a stage: the log keeps them for debugging
            self.log.debug("%s %s %s %s", where, event.detail, event.done, event.value)
            return
        self.log.info("%s %s %s %s", where, event.event, (event.lot or "")[:12], event.detail)

    def progress(self, job: str, stage: str, description: str, total: int | None) -> Progress:
        """A handle that counts nothing: a log has no progress bar."""
        return silent_progress(description, total)


class CollectingReporter(LogReporter):
    """Keeps every event (tests, and anything that shows a build after the fact)."""

    def __init__(self) -> None:
        self.events: list[BuildEvent] = []

    def report(self, event: BuildEvent) -> None:
        """Keep the event."""
        self.events.append(event)


class JsonReporter:
    """One JSON object per line on a stream; progress at most every `interval_s` per task."""

    def __init__(self, stream: IO[str] | None = None, interval_s: float = 1.0) -> None:
        self.stream, self.interval_s = stream or sys.stdout, interval_s
        self.lock = threading.Lock()

    def report(self, event: BuildEvent) -> None:
        """Write the event as one JSON line (thread-safe: `-j 2` stages report at once)."""
        line = json.dumps(event.as_json(), ensure_ascii=False, sort_keys=True)
        with self.lock:  # stages of `-j 2` report from two threads
            self.stream.write(line + "\n")
            self.stream.flush()

    def progress(self, job: str, stage: str, description: str, total: int | None) -> Progress:
        """A handle that reports progress as JSON lines."""
        return _JsonProgress(self, job, stage, description, total)


class _JsonProgress:
    def __init__(
        self, reporter: JsonReporter, job: str, stage: str, description: str, total: int | None
    ) -> None:
        self.reporter, self.job, self.stage, self.description, self.total = (
            reporter,
            job,
            stage,
            description,
            total,
        )
        self.done, self.last = 0, 0.0

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        if time.monotonic() - self.last >= self.reporter.interval_s:
            self._emit()

    def close(self) -> None:
        self._emit()

    def _emit(self) -> None:
        self.last = time.monotonic()
        self.reporter.report(
            BuildEvent(
                "progress",
                self.job,
                self.stage,
                detail=self.description,
                done=self.done,
                total=self.total,
            )
        )
