"""The opensem command line; the only place that turns errors into exit codes.

Exit codes: 0 ok, 1 a stage failed or verify found a mismatch, 2 invalid manifest or usage,
3 a quality gate failed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from opensem.console import console, short
from opensem.errors import GateFailed, ManifestError, OpensemError, UsageError, VerifyError

EXIT_CODES: list[tuple[type[OpensemError], int]] = [(ManifestError, 2), (UsageError, 2), (GateFailed, 3), (VerifyError, 1), (OpensemError, 1)]

manifest_argument = click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="opensem")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs from stages.")
@click.pass_context
def cli(context: click.Context, verbose: bool) -> None:
    """Make for small expert models.

    A TrainingManifest (YAML) says what to train, on what data, how to evaluate it and where to
    publish it. opensem plans it as a graph of stages keyed by SHA256 lot numbers, runs only the
    stale ones, and records every result in build/store and the manifest's .lock file.

    \b
    Typical use:
      opensem validate manifests/my-expert.yaml
      opensem plan manifests/my-expert.yaml
      opensem build manifests/my-expert.yaml
      opensem verify manifests/my-expert.yaml     # in CI
    """
    context.obj = {"verbose": verbose}


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger("opensem")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def _load(manifest: Path) -> Any:
    from opensem.manifest import load_manifest

    return load_manifest(manifest)


def _session(manifest: Path, force: tuple[str, ...] = ()) -> Any:
    from opensem.build.engine import BuildSession
    from opensem.build.layout import Layout
    from opensem.stages.wiring import build_graph
    from opensem.build.digests import DigestCache

    _setup_logging(bool((click.get_current_context().find_root().obj or {}).get("verbose")))
    graph = build_graph(_load(manifest))
    unknown = [s for s in force if s not in graph.names]
    if unknown:
        raise UsageError(f"no stage named {', '.join(unknown)} in {graph.job_id}", hint=f"stages: {', '.join(graph.names)}")
    digests = DigestCache(Layout(graph.project_root).digest_cache_file)
    return BuildSession(graph, digests, frozenset(force))


@cli.command()
@click.argument("manifests", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def validate(manifests: tuple[Path, ...]) -> None:
    """Check manifests against the schema and the project's files; nothing is built."""
    failures: list[ManifestError] = []
    for manifest in manifests:
        try:
            loaded = _load(manifest)
            click.echo(f"ok  {manifest}  ({loaded.manifest.job_id})")
        except ManifestError as exc:
            failures.append(exc)
    if failures:
        raise ManifestError([p for f in failures for p in f.problems])


@cli.command()
@manifest_argument
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--force", multiple=True, metavar="STAGE", help="Show the plan as if STAGE were forced.")
def plan(manifest: Path, as_json: bool, force: tuple[str, ...]) -> None:
    """Say for each stage whether it is up to date and, if not, why."""
    session = _session(manifest, force)
    result = session.plan(session.force)
    session.digests.save()
    if as_json:
        click.echo(json.dumps({"job_id": session.graph.job_id, "stages": [s.as_json() for s in result.stages]}, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{session.graph.job_id}: {len(result.stale)} of {len(result.stages)} stages stale", title_justify="left")
    for column in ("stage", "status", "lot", "why"):
        table.add_column(column, overflow="fold")
    for stage in result.stages:
        status = "[green]up to date[/]" if stage.status == "up-to-date" else "[yellow]stale[/]"
        table.add_row(stage.name, status, short(stage.lot), "\n".join(stage.reasons))
    console.print(table)


@cli.command()
@manifest_argument
def lots(manifest: Path) -> None:
    """Print each stage's lot number (stages waiting on a stale upstream have none yet)."""
    session = _session(manifest)
    for stage in session.plan().stages:
        click.echo(f"{stage.name:<12} {stage.lot or '(waits for upstream)'}")
    session.digests.save()


@cli.command()
@manifest_argument
@click.option("--force", multiple=True, metavar="STAGE", help="Rebuild STAGE even if the store holds its lot (repeatable).")
@click.option("--until", metavar="STAGE", help="Build only up to and including STAGE.")
def build(manifest: Path, force: tuple[str, ...], until: str | None) -> None:
    """Run the stale stages of a manifest and write its lock file."""
    started = time.time()
    if not force and _nothing_changed(manifest, until, started):
        return
    from opensem.build.engine import run_doit

    session = _session(manifest, force)
    session.until = until
    if until is not None and until not in session.graph.names:
        raise UsageError(f"no stage named {until} in {session.graph.job_id}", hint=f"stages: {', '.join(session.graph.names)}")
    console.print(f"[bold]{session.graph.job_id}[/]: {len(session.graph.nodes)} stages  [dim]({manifest})[/]")
    code = run_doit([session], [session.task_name(until)] if until else [session.graph.job_id])
    evaluated = session.resolver.lots.get("evaluate")
    if evaluated and session.store.has(evaluated):  # shown even when a gate failed: it says why
        _print_report(session.store, evaluated, session.graph.job_id)
    if session.error is not None:
        raise session.error
    if code != 0:
        raise OpensemError(f"doit stopped with exit code {code}", hint="see the messages above")
    changed = session.write_lock()
    seconds = time.time() - started
    lock_note = f"{session.lock_file.name} {'updated' if changed else 'unchanged'}"
    if not session.ran:
        console.print(f"Nothing to do: all {len(session.hits)} stages up to date ({seconds:.2f} s). {lock_note}.")
    else:
        console.print(f"Built {len(session.ran)} stage(s), {len(session.hits)} up to date, in {seconds:.1f} s. {lock_note}.")


def _print_report(store: Any, lot: str, title: str) -> None:
    """The evaluation report of a build: baseline vs fine-tuned, deltas and the headline."""
    from opensem.evaluation.report import print_report

    print_report(store.out_dir(lot) / "report.json", title, console)


def _nothing_changed(manifest: Path, until: str | None, started: float) -> bool:
    """The no-op fast path (opensem.build.stamp): True, after saying so, when nothing changed."""
    from opensem.build.layout import Layout, lock_path, project_root_of
    from opensem.build.stamp import unchanged_stages

    build_dir = Layout(project_root_of(manifest)).build
    stages = unchanged_stages(manifest, lock_path(manifest), build_dir, until) if manifest.is_file() else None
    if stages is None:
        return False
    for name, lot in stages:
        console.print(f"  [dim]·[/] {name:<13} up to date   [dim]{short(lot)}[/]")
    evaluated = dict(stages).get("evaluate")
    if evaluated:
        _print_report(Layout(project_root_of(manifest)).store, evaluated, manifest.stem)
    lock = lock_path(manifest).name
    console.print(f"Nothing to do: all {len(stages)} stages up to date ({time.time() - started:.2f} s). {lock} unchanged.")
    return True


@cli.command()
@manifest_argument
@click.option("--no-registry", is_flag=True, help="Do not check the published tag in the registry.")
def verify(manifest: Path, no_registry: bool) -> None:
    """Check, without running anything, that manifest, data, lock, store and registry agree."""
    from opensem.build.lock import read_lock
    from opensem.build.verify import verify as run_verify

    session = _session(manifest)
    report = run_verify(session.graph, read_lock(session.lock_file), session.store, session.digests, not no_registry)
    session.digests.save()
    for name in report.checked:
        console.print(f"  [green]✓[/] {name}")
    for note in report.notes:
        console.print(f"  [dim]- {note}[/]")
    if report.mismatches:
        raise VerifyError(report.mismatches)
    console.print(f"verify ok: {len(report.checked)} stages agree with {session.lock_file.name}")


@cli.command()
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to a file instead of stdout.")
@click.option("--markdown", is_flag=True, help="Print the manifest reference table instead (as in the README).")
def schema(output: Path | None, markdown: bool) -> None:
    """Print the JSON Schema of a TrainingManifest (for editors and CI)."""
    from opensem.manifest.reference import reference_markdown
    from opensem.manifest.schema import manifest_schema_text

    text = reference_markdown() + "\n" if markdown else manifest_schema_text()
    if output:
        output.write_text(text)
    else:
        click.echo(text, nl=False)


@cli.command("make-tiny-model")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--hidden-size", default=64, show_default=True)
@click.option("--layers", default=2, show_default=True)
@click.option("--vocab-size", default=2000, show_default=True)
@click.option("--seed", default=0, show_default=True)
def make_tiny_model(directory: Path, hidden_size: int, layers: int, vocab_size: int, seed: int) -> None:
    """Build a tiny Llama with a locally trained tokenizer (no download) for tests and demos."""
    from opensem.training.tiny import make_tiny_model as build_tiny

    build_tiny(directory, hidden_size=hidden_size, num_layers=layers, vocab_size=vocab_size, seed=seed)
    console.print(f"tiny model written to {directory}")


@cli.command()
@manifest_argument
@click.argument("destination", type=click.Path(path_type=Path, file_okay=False))
@click.option("--tag", help="Tag to pull; defaults to the one recorded in the manifest's lock.")
def pull(manifest: Path, destination: Path, tag: str | None) -> None:
    """Download a published adapter from the manifest's registry, checking every digest."""
    from opensem.build.lock import read_lock
    from opensem.release.registry import open_registry, pull as pull_tag

    session = _session(manifest)
    target = session.graph.node("publish").params if "publish" in session.graph.names else None
    if target is None:
        raise UsageError("the manifest has no publish_target", hint="add publish_target.registry and publish_target.tag")
    tag = tag or (read_lock(session.lock_file) or {}).get("published", {}).get("tag")
    if not tag:
        raise UsageError("no tag given and the lock records no published tag", hint="pass --tag TAG")
    fs, root = open_registry(target["registry"], session.graph.project_root)
    entry = pull_tag(fs, root, session.graph.job_id, tag, destination)
    console.print(f"pulled {session.graph.job_id}:{tag} (lot {short(entry['lot'])}) into {destination}")


@cli.command()
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=".", show_default=True, help="Project root.")
def init(name: str, root: Path) -> None:
    """Scaffold a new expert: data/NAME/raw/, data/NAME/golden/ and manifests/NAME.yaml (never overwrites)."""
    from opensem.manifest.scaffold import scaffold

    for path in scaffold(root, name):
        console.print(f"  created {path.relative_to(root)}{'/' if path.is_dir() else ''}")
    console.print(f"Put documents in data/{name}/raw/, then: opensem build manifests/{name}.yaml")


@cli.command()
@manifest_argument
@click.option("--stage", required=True, help="Stage whose records to export (ingest, synthesize, split, ...).")
@click.option("--format", "fmt", required=True, type=click.Choice(["alpaca", "sharegpt", "messages", "dpo"]), help="Dataset format.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path, dir_okay=False), help="jsonl file to write.")
@click.option("--file", "file", help="Which jsonl of the stage (default records.jsonl, else train.jsonl).")
def export(manifest: Path, stage: str, fmt: str, output: Path, file: str | None) -> None:
    """Write a built stage's records as alpaca, sharegpt, messages or dpo jsonl."""
    from opensem.data.export import export_dataset

    session = _session(manifest)
    report = export_dataset(session, stage, fmt, output, file)
    session.digests.save()
    console.print(report.describe(fmt, output))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run a command and map its outcome to an exit code."""
    try:
        code = cli.main(args=argv, prog_name="opensem", standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = 2
    except OpensemError as exc:
        console.print(exc.render(), markup=False)
        code = next(c for kind, c in EXIT_CODES if isinstance(exc, kind))
    except KeyboardInterrupt:
        console.print("interrupted: finished stages stay in the store; nothing half-built counts")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
