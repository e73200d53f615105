"""A logger that keeps its records, for tests that assert on what a stage or method logged.

caplog listens on the root logger, and the CLI (run in-process by the e2e tests) stops the
"opensem" logger from propagating there; a logger with its own handler sees its records whatever
ran before.
"""

from __future__ import annotations

import logging


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]

    def at(self, level: str) -> list[str]:
        return [record.getMessage() for record in self.records if record.levelname == level]

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


def recording_logger(name: str) -> tuple[logging.Logger, Recorder]:
    """A fresh logger called name (outside the "opensem" tree) with a recorder attached."""
    logger = logging.getLogger(f"tests.{name}")
    logger.handlers[:] = []
    recorder = Recorder()
    logger.addHandler(recorder)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, recorder
