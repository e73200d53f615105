"""doit tasks for every manifest of a project, for the project's dodo.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

from opensem.build.engine import BuildSession
from opensem.build.layout import Layout
from opensem.errors import OpensemError
from opensem.stages.wiring import build_graph
from opensem.build.digests import DigestCache
from opensem.manifest import load_manifest


def project_tasks(project_root: Path) -> Iterator[dict[str, Any]]:
    """Stage tasks plus a lock-writing task for each manifest in <project>/manifests/.

    An invalid manifest stops doit before anything runs, with the same message and exit code
    (2) as `opensem build`.
    """
    digests = DigestCache(Layout(project_root).digest_cache_file)
    for manifest in sorted((project_root / "manifests").glob("*.y*ml")):
        try:
            session = BuildSession(build_graph(load_manifest(manifest)), digests)
        except OpensemError as exc:
            sys.stderr.write(exc.render() + "\n")
            raise SystemExit(2) from None
        yield from session.tasks(with_lock_task=True)
