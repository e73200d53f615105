"""Plain `doit` builds every manifest in manifests/ with the same tasks as `opensem build`.

`doit list` shows the stages (`<job_id>:<stage>`), `doit tiny-demo:train` builds up to a stage,
`doit -n 2` runs independent stages of all manifests at once.
Results land in the same store, so a build made by either tool is up to date for the other.
"""

from pathlib import Path

from opensem.project import project_tasks

PROJECT = Path(__file__).resolve().parent

# sqlite3 takes turns between two `doit` runs at once (a JSON file would be overwritten by the last);
# `doit -n 2` runs stages in threads of one process, sharing its store and console (stages that load
# a model take turns).
DOIT_CONFIG = {
    "dep_file": str(PROJECT / "build" / "doit.sqlite"),
    "backend": "sqlite3",
    "verbosity": 2,
    "par_type": "thread",
}


def task_opensem():
    """Every stage of every manifest in manifests/."""
    yield from project_tasks(PROJECT)
