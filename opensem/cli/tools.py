"""Commands around a project: schema, init, make-tiny-model, export, pull."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from opensem.cli import cli, manifest_argument, session_for
from opensem.cli.options import ModelOptionsCommand
from opensem.console import console, short
from opensem.data.formats import EXPORT_FORMATS
from opensem.errors import UsageError


@cli.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to a file instead of stdout.",
)
@click.option(
    "--markdown",
    is_flag=True,
    help="Print the manifest reference table instead (as in the README).",
)
def schema(output: Path | None, markdown: bool) -> None:
    """Print the JSON Schema of a TrainingManifest (for editors and CI)."""
    from opensem.manifest.reference import reference_markdown
    from opensem.manifest.schema import manifest_schema_text

    text = reference_markdown() + "\n" if markdown else manifest_schema_text()
    if output:
        output.write_text(text)
    else:
        click.echo(text, nl=False)


@cli.command(
    "make-tiny-model",
    cls=ModelOptionsCommand,
    model="opensem.training.tiny:TinyModelSpec",
    aliases={"num_layers": ("--layers",)},
)
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def make_tiny_model(directory: Path, **shape: Any) -> None:
    """Build a tiny Llama with a locally trained tokenizer (no download) for tests and demos.

    The options are the fields of `base_model.tiny` in a manifest, with the same defaults.
    """
    from pydantic import ValidationError

    from opensem.training.tiny import TinyModelSpec
    from opensem.training.tiny import make_tiny_model as build_tiny

    try:
        spec = TinyModelSpec(**shape)
    except ValidationError as exc:
        raise UsageError(
            f"invalid tiny model shape: {exc.errors()[0]['msg']}",
            hint="see `opensem make-tiny-model --help`",
        ) from None
    build_tiny(directory, spec)
    console.print(f"tiny model written to {directory}")


@cli.command()
@manifest_argument
@click.argument("destination", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option("--tag", help="Tag to pull; defaults to the one recorded in the manifest's lock.")
@click.option(
    "--cache",
    "from_cache",
    is_flag=True,
    help="Instead: fill the local store with every stage of the lock from the shared stage cache.",
)
def pull(manifest: Path, destination: Path | None, tag: str | None, from_cache: bool) -> None:
    """Download a published adapter from the manifest's registry, checking every digest.

    With --cache, download the lock's stage results from the shared cache (`cache:` or
    OPENSEM_CACHE) into build/store instead, each checked against its recorded digest.
    """
    from opensem.release.registry import open_registry, point_at_shipped_base
    from opensem.release.registry import pull as pull_tag

    session = session_for(manifest)
    if from_cache:
        from opensem.cli.cache import pull_from_cache

        pull_from_cache(session)
        return
    if destination is None:
        raise UsageError(
            "pull needs a DESTINATION folder (or --cache)",
            hint="opensem pull manifests/x.yaml out/",
        )
    target = session.graph.node("publish").params if "publish" in session.graph.names else None
    if target is None:
        raise UsageError(
            "the manifest has no publish_target",
            hint="add publish_target.registry and publish_target.tag",
        )
    tag = tag or (session.previous_lock or {}).get("published", {}).get("tag")
    if not tag:
        raise UsageError(
            "no tag given and the lock records no published tag", hint="pass --tag TAG"
        )
    fs, root = open_registry(target["registry"], session.graph.project_root)
    entry = pull_tag(fs, root, session.graph.job_id, tag, destination)
    console.print(
        f"pulled {session.graph.job_id}:{tag} (lot {short(entry['lot'])}) into {destination}"
    )
    if point_at_shipped_base(destination):
        console.print(
            "  adapter/adapter_config.json now names the base it ships with (base_model/model): "
            "AutoPeftModelForCausalLM loads it as it is"
        )


@cli.command()
@click.argument("name", required=False)
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    show_default=True,
    help="Project root.",
)
@click.option(
    "--guided",
    is_flag=True,
    help="Ask for documents, a description, a persona and example questions, and write a working manifest.",
)
def init(name: str | None, root: Path, guided: bool) -> None:
    """Scaffold a new expert: data/NAME/raw/, data/NAME/golden/ and manifests/NAME.yaml (never overwrites)."""
    from opensem.manifest.scaffold import scaffold

    if guided:
        from opensem.cli.guided import guided as run_guided

        name = name or click.prompt("Name of the expert (letters, digits, - and _)")
        manifest = run_guided(root, name, click.prompt, console.print)
        console.print(
            f"\nWrote {manifest.relative_to(root)}. Next:\n  opensem build {manifest.relative_to(root)}      # "
            "train, evaluate, publish"
            f"\n  opensem serve {manifest.relative_to(root)}      # ask it questions (OpenAI-compatible)"
            f"\n  opensem feedback add {manifest.relative_to(root)}  # correct its answers, then build again"
        )
        return
    if name is None:
        raise click.UsageError("give the expert's NAME, or use --guided")
    for path in scaffold(root, name):
        console.print(f"  created {path.relative_to(root)}{'/' if path.is_dir() else ''}")
    console.print(f"Put documents in data/{name}/raw/, then: opensem build manifests/{name}.yaml")


@cli.command()
@manifest_argument
@click.option(
    "--stage", required=True, help="Stage whose records to export (ingest, synthesize, split, ...)."
)
@click.option(
    "--format", "fmt", required=True, type=click.Choice(EXPORT_FORMATS), help="Dataset format."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="jsonl file to write.",
)
@click.option(
    "--file", "file", help="Which jsonl of the stage (default records.jsonl, else train.jsonl)."
)
def export(manifest: Path, stage: str, fmt: str, output: Path, file: str | None) -> None:
    """Write a built stage's records as alpaca, sharegpt, messages or dpo jsonl."""
    from opensem.data.export import export_dataset

    session = session_for(manifest)
    report = export_dataset(session, stage, fmt, output, file)
    session.digests.save()
    console.print(report.describe(fmt, output))
