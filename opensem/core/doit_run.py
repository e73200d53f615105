"""Running build sessions' tasks through doit: one process, one run, optionally several stages at once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from opensem.core.engine import BuildSession


def run_doit(sessions: list[BuildSession], targets: list[str], jobs: int = 1) -> int:
    """Run the tasks of the sessions through doit's Python API; returns doit's exit code.

    jobs > 1 runs independent stages at once in threads (doit -n N -P thread): the stages share
    this process's store, resolver and console, and heavy ones take turns (execute.HEAVY).
    """
    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    layout = sessions[0].layout
    dep_file = layout.doit_db(os.getpid())
    dep_file.parent.mkdir(parents=True, exist_ok=True)

    def task_opensem() -> Iterator[dict[str, Any]]:
        for session in sessions:
            yield from session.tasks()

    namespace = {
        "task_opensem": task_opensem,
        "DOIT_CONFIG": {
            "dep_file": str(dep_file),
            "backend": "json",
            "verbosity": 2,
            "reporter": QuietReporter,
        },
    }
    parallel = ["-n", str(jobs), "-P", "thread"] if jobs > 1 else []
    # Libraries whose lazy imports must not race: imported here first
    for session in sessions if jobs > 1 else []:
        prepare = getattr(session.runner, "prepare", None)
        if prepare is not None:
            prepare({node.kind for node in session.graph.nodes})
    try:
        return DoitMain(ModuleTaskLoader(namespace), extra_config={"GLOBAL": {}}).run(
            ["run", *parallel, *targets]
        )
    finally:
        dep_file.unlink(missing_ok=True)


class QuietReporter:
    """doit reporter that leaves stage lines to the session and errors to the CLI."""

    desc = "opensem: stage lines come from the build session"

    def __init__(self, outstream: Any, options: Any) -> None:
        self.outstream = outstream
        self.errors: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None

    def runtime_error(self, msg: str) -> None:
        """doit's own errors, one line each."""
        self.outstream.write(f"doit: {msg}\n")
