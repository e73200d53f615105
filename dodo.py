"""Plain `doit` builds every manifest in manifests/ with the same tasks as `opensem build`.

`doit list` shows the stages (`<job_id>:<stage>`), `doit tiny-demo:train` builds up to a stage.
Results land in the same store, so a build made by either tool is up to date for the other.
"""

from pathlib import Path

from opensem.project import project_tasks

PROJECT = Path(__file__).resolve().parent

DOIT_CONFIG = {"dep_file": str(PROJECT / "build" / "doit.json"), "backend": "json", "verbosity": 2}


def task_opensem():
    """Every stage of every manifest in manifests/."""
    yield from project_tasks(PROJECT)
