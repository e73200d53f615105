"""StageGraph -> doit tasks, and running them against the store.

Each stage is a doit task whose `uptodate` check resolves the stage's lot (its upstream tasks have
run by then) and looks it up in the store; the action runs the stage into a temporary store entry
and renames it into place. `opensem build` and plain `doit` (dodo.py) use the same tasks, so a
build made by either is up to date for the other.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opensem.core.digests import DigestCache
from opensem.core.events import BuildEvent, EventName, LogReporter, Reporter
from opensem.core.execute import Executor, LocalExecutor, StageJob
from opensem.core.graph import SourceInput, StageGraph, UpstreamInput
from opensem.core.layout import Layout, lock_path
from opensem.core.lock import DamagedLock, lock_from_plan, read_lock, write_lock
from opensem.core.lotlock import describe, lot_lock
from opensem.core.lots import LOCK_FORMAT
from opensem.core.plan import Plan, Resolver, StagePlan, make_plan, stale_reasons
from opensem.core.stage import StageRunner
from opensem.core.stamp import write_stamp
from opensem.errors import OpensemError, StageError

if TYPE_CHECKING:
    from opensem.core.remote import RemoteCache

log = logging.getLogger("opensem")


@dataclass
class BuildSession:
    """One build of one manifest: resolves lots as doit reaches each stage and runs stale ones."""

    graph: StageGraph
    digests: DigestCache
    runner: StageRunner
    force: frozenset[str] = frozenset()
    until: str | None = None
    remote: RemoteCache | None = None  # a stage cache shared between machines (opensem.core.remote)
    ran: list[str] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)  # hits that came from the shared cache
    executor: Executor | None = None  # where entries are made; this process unless told otherwise
    error: OpensemError | None = None
    reporter: Reporter = field(
        default_factory=LogReporter
    )  # who hears what happens (the core never prints)

    def __post_init__(self) -> None:
        self.layout = Layout(self.graph.project_root)
        self.store = self.layout.store
        self.resolver = Resolver(self.graph, self.digests)
        self.lock_file = lock_path(self.graph.manifest_path)
        if self.executor is None:
            self.executor = LocalExecutor(
                self.store,
                self.digests,
                self.runner,
                self.graph.project_root,
                self.layout.build,
                self.reporter,
            )
        try:
            self.previous_lock = read_lock(self.lock_file)
        except DamagedLock as exc:  # the build rewrites it from the store; nothing built is lost
            self.say(
                "lock-damaged",
                None,
                None,
                f"{exc.render()}; planning as if there were no lock, a build writes a sound one",
            )
            self.previous_lock = None

    def say(
        self,
        event: EventName,
        stage: str | None,
        lot: str | None,
        detail: str = "",
        seconds: float | None = None,
    ) -> None:
        """Report one build event to the session's reporter."""
        self.reporter.report(BuildEvent(event, self.graph.job_id, stage, lot, detail, seconds))

    def task_name(self, stage: str) -> str:
        """doit's name for a stage of this job."""
        return f"{self.graph.job_id}:{stage}"

    def tasks(self, with_lock_task: bool = False) -> Iterator[dict[str, Any]]:
        """doit task dicts, one per stage (and optionally one that writes the lock)."""
        for node in self.graph.nodes:
            yield {
                "basename": self.graph.job_id,
                "name": node.name,
                "doc": f"{node.kind} stage of {self.graph.job_id}",
                "actions": [(self.execute, [node.name])],
                "uptodate": [lambda name=node.name: self.is_up_to_date(name)],
                "task_dep": [self.task_name(up) for up in node.upstream()],
                "verbosity": 2,
            }
        if with_lock_task:
            yield {
                "basename": self.graph.job_id,
                "name": "lock",
                "doc": f"write {self.lock_file.name}",
                "actions": [self._write_lock_action],
                "uptodate": [lambda: False],
                "task_dep": [self.task_name(n) for n in self.graph.names],
                "verbosity": 2,
            }

    def is_up_to_date(self, name: str) -> bool:
        """Whether the stage's lot already has an entry (doit's uptodate check), noting where it came from."""
        node = self.graph.node(name)
        lot = self.resolver.resolve(node)
        if lot is None:
            raise StageError(
                f"stage {name}: upstream output unknown",
                hint="this is a bug in the task order; please report it",
            )
        if name in self.force:
            return False
        if self.store.has(lot) and not self.store.intact(lot, self.digests):
            self.say("store-modified", name, lot, "was modified; dropping it and rebuilding")
            self.store.drop(lot)
        if not self.store.has(lot):
            return self._pull(name, lot)
        self.resolver.record_output(name, str(self.store.output_digest(lot)))
        self.hits.append(name)
        self.say("up-to-date", name, lot)
        return True

    def _pull(self, name: str, lot: str) -> bool:
        """Take lot from the shared cache, if there is one and it has the lot intact (under the lot's
        lock, so no build of this machine stages the same lot at the same time)."""
        if self.remote is None or self.graph.node(name).side_effect:
            return False
        with lot_lock(
            self.store.root / ".locks",
            lot,
            f"{self.graph.job_id}:{name} (pulling)",
            lambda holder: None,
        ):
            fetched = (
                None if self.store.has(lot) else self.remote.fetch(lot, self.store, self.digests)
            )
        if fetched is not None and fetched.status == "corrupt":
            self.say("cache-unusable", name, lot, f"{fetched.reason}; building it here")
        if fetched is not None and fetched.status != "hit":
            return False
        self.resolver.record_output(name, str(self.store.output_digest(lot)))
        self.hits.append(name)
        if fetched is not None:
            self.pulled.append(name)
            self.say("from-cache", name, lot, self.remote.url)
        else:
            self.say("up-to-date", name, lot, "built meanwhile by another build")
        return True

    def _push(self, name: str, lot: str) -> None:
        """Give a new entry to a read-write shared cache; a failed upload is a warning, the build goes on."""
        if self.remote is None or not self.remote.writable:
            return
        try:
            self.remote.push(lot, self.store)
        except Exception as exc:  # the build's result is safe in the local store either way
            self.say("not-uploaded", name, lot, f"{type(exc).__name__}: {exc}")

    def execute(self, name: str) -> Any:
        """doit action: run one stage into the store; failures are kept for the CLI to report."""
        from doit.exceptions import TaskFailed

        try:
            self._run_stage(name)
            return True
        except OpensemError as exc:
            self.error = exc
        except Exception as exc:  # a library failure inside a stage: keep the traceback in a log
            self.error = self._library_failure(name, exc)
        # Plan says why this lot is not built (a failed gate blocks the build)
        if name in self.resolver.lots:
            failure = {
                "stage": name,
                "error": type(self.error).__name__,
                "message": self.error.message,
                "blocks": self.error.blocks,
            }
            with contextlib.suppress(OSError):  # a full disk must not hide the stage's own error
                self.store.record_failure(self.resolver.lots[name], failure)
        self.say("failed", name, self.resolver.lots.get(name), self.error.message)
        return TaskFailed(self.error.render())

    def _library_failure(self, name: str, exc: Exception) -> StageError:
        """A stage's unexpected exception as an error with a hint; the traceback goes to a log file."""
        if disk_full(exc):
            return StageError(
                f"stage {name} failed: no space left on the disk holding {self.layout.build}",
                hint=(
                    "free space there (df -h); the half-made entry was removed, and the next build "
                    "keeps everything already built"
                ),
            )
        log_file = self.layout.build / "logs" / f"{self.graph.job_id}-{name}.log"
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.write_text(traceback.format_exc())
            hint = f"full traceback in {log_file}"
        except OSError:
            hint = f"its traceback could not be written to {log_file} either"
        return StageError(f"stage {name} failed: {type(exc).__name__}: {exc}", hint=hint)

    def _run_stage(self, name: str) -> None:
        """Run a stale stage under its lot's lock; a build that made the lot while this one waited is reused."""
        lot = self.resolver.lots[name]

        def waiting(holder: dict[str, Any] | None) -> None:
            self.say("waiting", name, lot, f"{describe(holder)} is building this lot")

        with lot_lock(
            self.store.root / ".locks", lot, f"{self.graph.job_id}:{name}", waiting
        ) as abandoned:
            self.store.discard_staging(
                lot
            )  # a killed attempt's half entry; holding the lock, none is live
            if (
                name not in self.force
                and self.store.has(lot)
                and self.store.intact(lot, self.digests)
            ):
                self.resolver.record_output(name, str(self.store.output_digest(lot)))
                self.hits.append(name)
                self.say("up-to-date", name, lot, "built by the build it waited for")
                return
            if abandoned:
                self.say(
                    "taking-over", name, lot, f"{describe(abandoned)} stopped before finishing it"
                )
            self._build(name, lot)

    def _build(self, name: str, lot: str) -> None:
        node = self.graph.node(name)
        inputs = self.resolver.input_digests[name]
        locked = (self.previous_lock or {}).get("stages", {}).get(name)
        lock_format = (self.previous_lock or {}).get("format", LOCK_FORMAT)
        why = (
            "forced with --force"
            if name in self.force
            else "; ".join(r.text for r in stale_reasons(node, lot, inputs, locked, lock_format))
        )
        self.say("started", name, lot, why)
        upstream = {
            slot: self.resolver.lots[source.stage]
            for slot, source in node.inputs.items()
            if isinstance(source, UpstreamInput)
        }
        job = StageJob(
            node,
            lot,
            self.graph.job_id,
            inputs,
            upstream,
            self._lineage(name),
            replace=name in self.force,
        )
        assert self.executor is not None  # set in __post_init__
        built = self.executor.build(job)
        self.resolver.record_output(name, built.output)
        self.ran.append(name)
        self.say("built", name, lot, built.result.summary, built.seconds)
        self._push(name, lot)

    def _lineage(self, name: str) -> dict[str, dict[str, str]]:
        return {
            up: {"lot": self.resolver.lots[up], "output": self.resolver.outputs[up]}
            for up in sorted(self.graph.ancestors(name))
        }

    def plan(self, force: frozenset[str] = frozenset()) -> Plan:
        """The plan as of now; `force` shows forced stages as stale (the lock never does)."""
        return make_plan(self.graph, self.store, self.digests, self.previous_lock, force)

    def _write_lock_action(self) -> None:
        self.write_lock()  # doit reads a False return as failure; an unchanged lock is success

    def write_lock(self) -> bool:
        """Write the lock for every up-to-date stage; returns whether it changed."""
        plan = self.plan()
        records: dict[str, Any] = {}
        for stage in plan.stages:  # what stages asked the lock to remember (what was published)
            if stage.status == "up-to-date" and stage.lot is not None:
                records.update(self.store.meta(stage.lot).get("lock") or {})
        changed = write_lock(self.lock_file, lock_from_plan(plan, records))
        scope = (
            self.graph.names
            if self.until is None
            else [*self.graph.ancestors(self.until), self.until]
        )
        in_scope = [s for s in plan.stages if s.name in scope]
        if all(s.status == "up-to-date" for s in in_scope):
            self._write_stamp(in_scope)
        self.digests.save()
        return changed

    def _write_stamp(self, stages: list[StagePlan]) -> None:
        """Let the next build of an unchanged project stop before planning (opensem.core.stamp)."""
        if any(node.volatile for node in self.graph.nodes):
            return  # a URL source can change with no local file changing: every build must plan
        names = {s.name for s in stages}
        nodes = [n for n in self.graph.nodes if n.name in names]
        roots = sorted(
            {
                str(self.graph.project_root / i.path)
                for n in nodes
                for i in n.inputs.values()
                if isinstance(i, SourceInput)
            }
        )
        roots += [str(path) for path in (*self.graph.included, *self.graph.watched)]
        roots += [str(self.store.entry(str(s.lot))) for s in stages]
        lots = [(s.name, str(s.lot)) for s in stages]
        reporting = {n.name: n.kind for n in nodes if n.reports}
        write_stamp(
            self.graph.manifest_path,
            self.lock_file,
            self.layout.build,
            self.until,
            roots,
            lots,
            reporting,
        )


def disk_full(exc: BaseException) -> bool:
    """Whether an exception, or one it was raised from, says the disk is full (libraries word it their own way)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(current) or "Disk quota exceeded" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False
