"""Commands on a manifest's build: validate, plan, lots, build, verify."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from opensem.cli import cli, manifest_argument, session_for
from opensem.console import console, escape, short
from opensem.errors import ManifestError, OpensemError, UsageError, VerifyError


@cli.command()
@click.argument(
    "manifests", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False)
)
def validate(manifests: tuple[Path, ...]) -> None:
    """Check manifests as `plan` would, without the store: schema, paths and every stage's settings.

    Nothing is built and nothing is read but the manifest and the project's file listing (a URL
    source is listed). Every problem of every manifest is reported at once.
    """
    from opensem.project import load_graph

    failures: list[ManifestError] = []
    for manifest in manifests:
        try:
            graph = load_graph(manifest)
            click.echo(
                f"ok  {manifest}  ({graph.job_id}: {len(graph.nodes)} stages: {', '.join(graph.names)})"
            )
        except ManifestError as exc:
            failures.append(exc)
    if failures:
        raise ManifestError([p for f in failures for p in f.problems])


@cli.command()
@manifest_argument
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the plan as JSON: each stage's lot, status and reasons (with stable codes).",
)
@click.option(
    "--force", multiple=True, metavar="STAGE", help="Show the plan as if STAGE were forced."
)
def plan(manifest: Path, as_json: bool, force: tuple[str, ...]) -> None:
    """Say for each stage whether it is up to date and, if not, why."""
    session = session_for(manifest, force)
    result = session.plan(session.force)
    session.digests.save()
    cached = _in_cache(
        session, [s.lot for s in result.stages if s.status != "up-to-date" and s.lot]
    )
    if as_json:
        stages = [
            {
                **s.as_json(),
                **(
                    {"in_cache": s.lot in cached}
                    if session.remote is not None and s.status != "up-to-date"
                    else {}
                ),
            }
            for s in result.stages
        ]
        click.echo(json.dumps({"job_id": session.graph.job_id, "stages": stages}, indent=2))
        return
    from rich.table import Table

    table = Table(
        title=f"{session.graph.job_id}: {len(result.stale)} of {len(result.stages)} stages stale",
        title_justify="left",
    )
    for column in ("stage", "status", "lot", "why"):
        table.add_column(column, overflow="fold")
    for stage in result.stages:
        status = (
            "[green]up to date[/]"
            if stage.status == "up-to-date"
            else "[cyan]in cache[/]"
            if stage.lot in cached
            else "[yellow]stale[/]"
        )
        table.add_row(
            stage.name, status, short(stage.lot), escape("\n".join(r.text for r in stage.reasons))
        )
    console.print(table)


def _in_cache(session: Any, lots: list[str]) -> set[str]:
    """The lots the shared cache holds (a build would take them from there); none when it cannot be reached."""
    if session.remote is None:
        return set()
    try:
        return {lot for lot in lots if session.remote.has(lot)}
    except Exception as exc:  # unreachable: plan still answers, and says so
        console.print(
            f"  [yellow]![/] the stage cache {escape(session.remote.url)} cannot be read: "
            f"{escape(f'{type(exc).__name__}: {exc}')}"
        )
        return set()


@cli.command()
@manifest_argument
def lots(manifest: Path) -> None:
    """Print each stage's lot number (stages waiting on a stale upstream have none yet)."""
    session = session_for(manifest)
    for stage in session.plan().stages:
        click.echo(f"{stage.name:<12} {stage.lot or '(waits for upstream)'}")
    session.digests.save()


@cli.command()
@click.argument(
    "manifests", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False)
)
@click.option(
    "--force",
    multiple=True,
    metavar="STAGE",
    help="Rebuild STAGE even if the store holds its lot (repeatable).",
)
@click.option(
    "--until", metavar="STAGE", help="Build only up to and including STAGE (one manifest)."
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Stages to run at once; independent stages of all the manifests overlap, stages that load a model take turns.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default=None,
    help=(
        "Where stages run, over the manifest's `executor`: local (this process) or ray (tasks on "
        "the cluster at RAY_ADDRESS, through a read-write cache)."
    ),
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help=(
        "Report the build as JSON lines on stdout, one event per line (planned, started, progress, "
        "built, up-to-date, from-cache, waiting, failed, finished, ...)."
    ),
)
def build(
    manifests: tuple[Path, ...],
    force: tuple[str, ...],
    until: str | None,
    jobs: int,
    executor: str | None,
    as_json: bool,
) -> None:
    """Run the stale stages of one or more manifests and write their lock files."""
    from opensem.console import RichReporter
    from opensem.core.events import JsonReporter

    started = time.time()
    if len(manifests) > 1 and until is not None:
        raise UsageError(
            "--until names a stage of one manifest",
            hint="build one manifest with --until, or drop it",
        )
    if (
        len(manifests) == 1
        and not force
        and not as_json
        and _nothing_changed(manifests[0], until, started)
    ):
        return
    from opensem.core.doit_run import run_doit
    from opensem.project import choose_executor

    reporter = JsonReporter() if as_json else RichReporter(label_jobs=len(manifests) > 1)
    sessions = [session_for(manifest, force, reporter) for manifest in manifests]
    jobs_seen = [s.graph.job_id for s in sessions]
    if len(set(jobs_seen)) < len(jobs_seen):
        raise UsageError(
            f"two manifests share a job_id ({', '.join(sorted(j for j in set(jobs_seen) if jobs_seen.count(j) > 1))})",
            hint="give each expert its own job_id",
        )
    for session, manifest in zip(sessions, manifests):
        session.until = until
        if until is not None and until not in session.graph.names:
            raise UsageError(
                f"no stage named {until} in {session.graph.job_id}",
                hint=f"stages: {', '.join(session.graph.names)}",
            )
        choose_executor(session, executor)
        session.say("planned", None, None, f"{len(session.graph.nodes)} stages ({manifest})")
    code = run_doit(sessions, [sessions[0].task_name(until)] if until else jobs_seen, jobs)
    for session in sessions if not as_json else ():
        reporting = {node.name: node.kind for node in session.graph.nodes if node.reports}
        _print_reports(
            session.store, dict(session.resolver.lots), reporting, session.graph.job_id
        )  # shown even when a gate failed: it says why
    failed = next((s.error for s in sessions if s.error is not None), None)
    if failed is not None:
        raise failed
    if code != 0:
        raise OpensemError(f"doit stopped with exit code {code}", hint="see the messages above")
    for session in sessions:
        _summary(session, session.write_lock(), time.time() - started)


def _summary(session: Any, changed: bool, seconds: float) -> None:
    lock_note = f"{session.lock_file.name} {'updated' if changed else 'unchanged'}"
    pulled = f" ({len(session.pulled)} from the cache)" if session.pulled else ""
    if not session.ran:
        text = f"Nothing to do: all {len(session.hits)} stages up to date{pulled} ({seconds:.2f} s). {lock_note}."
    else:
        text = (
            f"Built {len(session.ran)} stage(s), {len(session.hits)} up to date{pulled}, in "
            f"{seconds:.1f} s. {lock_note}."
        )
    session.say("finished", None, None, text, round(seconds, 3))


def _print_reports(store: Any, lots: dict[str, str], reporting: dict[str, str], title: str) -> None:
    """What a build measured, as each reporting stage kind shows it (opensem.stages.base)."""
    from opensem.stages import get_stage

    for name, kind in reporting.items():
        # This manifest's own, not a merged expert's.
        if "/" not in name and lots.get(name) and store.has(lots[name]):
            getattr(get_stage(kind), "show")(store.out_dir(lots[name]), title, console)  # noqa: B009


def _nothing_changed(manifest: Path, until: str | None, started: float) -> bool:
    """The no-op fast path (opensem.noop): True, after saying so, when nothing changed."""
    from opensem.core.layout import Layout, project_root_of
    from opensem.noop import report_lines, reporting, unchanged

    stages = unchanged(manifest, until)
    if stages is None:
        return False
    lines = report_lines(stages, time.time() - started, manifest)
    for line in lines[:-1]:
        console.print(escape(line))
    _print_reports(
        Layout(project_root_of(manifest)).store,
        dict(stages),
        reporting(manifest, until),
        manifest.stem,
    )
    console.print(escape(lines[-1]))
    return True


@cli.command()
@manifest_argument
@click.option("--no-registry", is_flag=True, help="Do not check the published tag in the registry.")
def verify(manifest: Path, no_registry: bool) -> None:
    """Check, without running anything, that manifest, data, lock, store and registry agree."""
    from opensem.core.digests import DigestCache
    from opensem.core.layout import Layout, lock_path
    from opensem.core.lock import DamagedLock, read_lock
    from opensem.core.verify import verify as verify_graph
    from opensem.project import load_graph

    graph = load_graph(manifest)
    layout = Layout(graph.project_root)
    digests = DigestCache(layout.digest_cache_file)
    lock_file = lock_path(graph.manifest_path)
    try:
        lock = read_lock(lock_file)
    except DamagedLock as exc:
        raise VerifyError([exc.render()]) from None
    report = verify_graph(graph, lock, layout.store, digests)
    published = (lock or {}).get("published")
    if not no_registry and published and not report.mismatches and "publish" in graph.names:
        from opensem.release.registry import published_problems

        report.mismatches.extend(
            published_problems(
                graph.node("publish").params["registry"],
                graph.project_root,
                graph.job_id,
                published,
            )
        )
    digests.save()
    for name in report.checked:
        console.print(f"  [green]✓[/] {name}")
    for note in report.notes:
        console.print(f"  [dim]- {escape(note)}[/]")
    if report.mismatches:
        raise VerifyError(report.mismatches)
    console.print(f"verify ok: {len(report.checked)} stages agree with {lock_file.name}")
