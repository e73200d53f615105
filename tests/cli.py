"""The real CLI run in this process, as tests drive it."""

from __future__ import annotations

import contextlib
import io

from opensem.cli import main


def run_cli(*args: str) -> tuple[int, str]:
    """(exit code, everything it printed) of `opensem ARGS`."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue()
