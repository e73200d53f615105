"""Terminal output: one console on stderr, stage lines, and progress bars for long work."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["console", "escape", "progress_bar", "short"]

console = Console(stderr=True, highlight=False, soft_wrap=True)


def short(lot: str | None) -> str:
    return lot[:12] if lot else "-" * 12


class _BarHandle:
    def __init__(self, description: str, total: int | None) -> None:
        self._progress = Progress(
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
        self._task = self._progress.add_task(description, total=total)
        self._progress.start()

    def advance(self, amount: int = 1) -> None:
        self._progress.advance(self._task, amount)

    def close(self) -> None:
        self._progress.stop()


def _plain_output() -> bool:
    return os.environ.get("CI", "").lower() == "true" or not sys.stderr.isatty()


def progress_bar(description: str, total: int | None) -> Any:
    """A live progress bar on a terminal; silent when output is piped (logs stay clean)."""
    return _BarHandle(description, total)
