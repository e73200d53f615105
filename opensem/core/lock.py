"""The lock file `<manifest stem>.lock` beside the manifest: per stage its lot, params, input
digests and output digest, plus what stages asked it to remember (what was published). Sorted
keys and stable formatting keep diffs readable; it is meant to be committed.

A damaged lock (a merge conflict, a half-written file, hand edits that broke the JSON) is never
trusted: `verify` fails on it, while `build` and `plan` warn and carry on as if there were none,
and the build writes a sound one from the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opensem.core.files import write_atomic
from opensem.core.lots import LOCK_FORMAT
from opensem.core.plan import Plan
from opensem.errors import Location, OpensemError


class DamagedLock(OpensemError):
    """The lock file exists but cannot be read as a lock."""


def read_lock(path: Path) -> dict[str, Any] | None:
    """The lock's content, None when there is none; DamagedLock when it cannot be trusted."""
    hint = "restore it from git (`git checkout -- <lock>`), or delete it and build again"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedLock(
            f"lock file is not valid JSON: {exc}",
            Location(file=str(path), line=getattr(exc, "lineno", None)),
            hint,
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        raise DamagedLock("lock file has no `stages` mapping", Location(file=str(path)), hint)
    broken = sorted(
        name
        for name, entry in data["stages"].items()
        if not isinstance(entry, dict) or not isinstance(entry.get("lot"), str)
    )
    if broken:
        raise DamagedLock(
            f"lock entries without a lot: {', '.join(broken)}", Location(file=str(path)), hint
        )
    return data


def lots_of_lock(lock: dict[str, Any] | None) -> dict[str, str]:
    """{stage: lot} of every stage a lock records."""
    return {
        name: str(entry["lot"])
        for name, entry in ((lock or {}).get("stages") or {}).items()
        if entry.get("lot")
    }


def lock_from_plan(plan: Plan, records: dict[str, Any]) -> dict[str, Any]:
    """Lock content for every up-to-date stage of a plan, plus the entries stages recorded."""
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
    data.update({key: value for key, value in sorted(records.items()) if key not in data})
    return data


def render_lock(data: dict[str, Any]) -> str:
    """The lock as text: sorted keys, so equal locks are equal bytes."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_lock(path: Path, data: dict[str, Any]) -> bool:
    """Write atomically; returns whether the content changed."""
    text = render_lock(data)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    write_atomic(path, text)
    return True
