"""The lock file `<manifest stem>.lock` beside the manifest: per stage its lot, params, input
digests and output digest, plus what was published. Sorted keys and stable formatting keep diffs
readable; it is meant to be committed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from opensem.errors import Location, OpensemError
from opensem.build.plan import Plan

LOCK_FORMAT = 1


def read_lock(path: Path) -> dict[str, Any] | None:
    """The lock's content, None when there is none; a damaged lock is an error, not ignored."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise OpensemError(
            f"lock file is not valid JSON: {exc}",
            Location(file=str(path), line=getattr(exc, "lineno", None)),
            "restore it from git (`git checkout -- <lock>`) or delete it and rebuild",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        raise OpensemError("lock file has no `stages` mapping", Location(file=str(path)), "restore it from git or delete it and rebuild")
    return data


def lock_from_plan(plan: Plan, published: dict[str, Any] | None) -> dict[str, Any]:
    """Lock content for every up-to-date stage of a plan."""
    graph = plan.graph
    stages: dict[str, Any] = {}
    for stage in plan.stages:
        if stage.status != "up-to-date" or stage.lot is None:
            continue
        node = graph.node(stage.name)
        stages[stage.name] = {
            "kind": node.kind,
            "version": node.version,
            "lot": stage.lot,
            "params": node.params,
            "inputs": stage.inputs,
            "output": stage.output,
        }
    data: dict[str, Any] = {
        "format": LOCK_FORMAT,
        "job_id": graph.job_id,
        "manifest": graph.manifest_path.relative_to(graph.project_root).as_posix(),
        "stages": stages,
    }
    if published:
        data["published"] = published
    return data


def render_lock(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_lock(path: Path, data: dict[str, Any]) -> bool:
    """Write atomically; returns whether the content changed."""
    text = render_lock(data)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return True
