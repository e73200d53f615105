"""Terminal output: one console on stderr, stage lines, and progress bars for long work."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["console", "escape", "progress_bar", "short", "stdout"]

# Piped output is read by people and tools alike: tables keep their full width instead of Rich's 80
# columns, so no name is cut to "bike-re…".
PIPED_WIDTH = 1000
console = Console(
    stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else PIPED_WIDTH
)
stdout = Console(
    highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else PIPED_WIDTH
)


def short(lot: str | None) -> str:
    """The first 12 characters of a lot, or dashes when there is none (tables stay aligned)."""
    return lot[:12] if lot else "-" * 12


class _Bars:
    """One live display for every open bar: stages running at once (build -j) each get a line of it."""

    lock = threading.Lock()
    progress: Progress | None = None
    open = 0


class _BarHandle:
    def __init__(self, description: str, total: int | None) -> None:
        with _Bars.lock:
            if _Bars.progress is None:
                _Bars.progress = Progress(
                    TextColumn("    {task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("eta"),
                    TimeRemainingColumn(),
                    console=console,
                    transient=not _plain_output(),
                    disable=not console.is_terminal and os.environ.get("OPENSEM_PROGRESS") != "1",
                )
                _Bars.progress.start()
            self._progress = _Bars.progress
            self._task = self._progress.add_task(description, total=total)
            _Bars.open += 1
        self._closed = False

    def advance(self, amount: int = 1) -> None:
        self._progress.advance(self._task, amount)

    def close(self) -> None:
        with _Bars.lock:
            if self._closed:
                return
            self._closed = True
            _Bars.open -= 1
            if self._progress.live.transient:
                self._progress.remove_task(self._task)
            if _Bars.open == 0:
                self._progress.stop()
                _Bars.progress = None


def _plain_output() -> bool:
    return os.environ.get("CI", "").lower() == "true" or not sys.stderr.isatty()


def progress_bar(description: str, total: int | None) -> Any:
    """A live progress bar on a terminal; silent when output is piped (logs stay clean)."""
    return _BarHandle(description, total)


# How the CLI shows each build event: (stage name, lot, detail) -> its line.
_EVENT_LINES: dict[str, Any] = {
    "up-to-date": lambda name, lot, detail: (
        f"[dim]·[/] {name} up to date   [dim]{lot}[/]" + (f"  {detail}" if detail else "")
    ),
    "from-cache": lambda name, lot, detail: (
        f"[dim]·[/] {name} from cache   [dim]{lot}  {detail}[/]"
    ),
    "cache-unusable": lambda name, lot, detail: (
        f"[yellow]![/] {name} cache entry {lot} unusable ({detail})"
    ),
    "not-uploaded": lambda name, lot, detail: (
        f"[yellow]![/] {name} not uploaded to the cache: {detail}"
    ),
    "store-modified": lambda name, lot, detail: f"[yellow]![/] {name} store entry {lot} {detail}",
    "waiting": lambda name, lot, detail: (
        f"[yellow]…[/] {name} waiting      [dim]{lot}[/]  {detail}"
    ),
    "taking-over": lambda name, lot, detail: (
        f"[yellow]![/] {name} taking over  [dim]{lot}[/]  {detail}"
    ),
    "started": lambda name, lot, detail: f"[cyan]▶[/] {name} running      [dim]{lot}  {detail}[/]",
    "failed": lambda name, lot, detail: f"[red]✗[/] {name} failed",
}


class RichReporter:
    """Build events as the CLI's lines (and progress bars on a terminal)."""

    def __init__(self, label_jobs: bool = False) -> None:
        self.label_jobs = (
            label_jobs  # several manifests in one build: each line says whose stage it is
        )

    def report(self, event: Any) -> None:
        if event.event == "planned":
            console.print(f"[bold]{event.job}[/]: {escape(event.detail)}")
        elif event.event == "finished":
            console.print(escape(event.detail))
        elif event.event == "lock-damaged":
            console.print(f"  [yellow]![/] {escape(event.detail)}")
        elif event.event == "connected":
            console.print(f"  [dim]{escape(event.detail)}[/]")
        elif event.event == "built":
            name = self._name(event)
            console.print(
                f"  [green]✓[/] {name:<13} built in {event.seconds:.1f} s [dim]{short(event.lot)}[/]  "
                f"{escape(event.detail)}"
            )
        elif event.event in _EVENT_LINES:
            console.print(
                "  "
                + _EVENT_LINES[event.event](
                    f"{self._name(event):<13}", short(event.lot), escape(event.detail)
                )
            )

    def _name(self, event: Any) -> str:
        return f"{event.job}:{event.stage}" if self.label_jobs else str(event.stage)

    def progress(self, job: str, stage: str, description: str, total: int | None) -> Any:
        return progress_bar(description, total)
