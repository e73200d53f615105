"""`opensem expert ...` (the expert registry) and `opensem route ...` (classify, score, serve)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from opensem.cli import _setup_logging, cli
from opensem.cli.options import ModelOptionsCommand, settings_from
from opensem.console import console

registry_option = click.option(
    "--registry",
    "registry_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("experts.yaml"),
    show_default=True,
    help="The expert registry file (YAML).",
)


@cli.group("expert")
def expert_group() -> None:
    """The expert registry: which releases answer which queries (experts.yaml)."""


@expert_group.command("add")
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@registry_option
@click.option("--name", help="Name in the registry (default: the manifest's job_id).")
@click.option(
    "--endpoint",
    help="OpenAI-compatible base URL serving it (default: the router serves it itself).",
)
@click.option(
    "--replica",
    "replicas",
    multiple=True,
    help="A further URL serving the same release (repeatable).",
)
@click.option(
    "--priority",
    type=int,
    default=0,
    show_default=True,
    help="Breaks ties between equally confident experts.",
)
def expert_add(
    manifest: Path,
    registry_path: Path,
    name: str | None,
    endpoint: str | None,
    replicas: tuple[str, ...],
    priority: int,
) -> None:
    """Add (or update) an expert from a manifest: its description, `expert:` section, golden set and published lot."""
    from opensem.project import expert_from_manifest
    from opensem.routing.registry import add_expert, load_registry, save_registry

    registry = load_registry(registry_path)
    expert = expert_from_manifest(manifest, name, endpoint, list(replicas), priority)
    base = registry_path.resolve().parent
    relative: dict[str, Any] = {
        key: os.path.relpath(Path(value).resolve(), base)
        for key, value in (("model_path", expert.model_path), ("golden", expert.golden))
        if value
    }
    relative["questions"] = [
        os.path.relpath(Path(path).resolve(), base) for path in expert.questions
    ]
    registry, replaced = add_expert(registry, expert.model_copy(update=relative))
    save_registry(registry, registry_path)
    lot = (
        f"lot {expert.lot[:12]} ({expert.tag})"
        if expert.lot
        else "not published yet: build it before serving"
    )
    console.print(
        f"{'updated' if replaced else 'added'} {expert.name} in {registry_path}: {len(expert.keyword_rules())} "
        f"keywords, {len(expert.examples)} examples, {lot}"
    )


@expert_group.command("remove")
@click.argument("name")
@registry_option
def expert_remove(name: str, registry_path: Path) -> None:
    """Remove an expert from the registry."""
    from opensem.routing.registry import load_registry, remove_expert, save_registry

    save_registry(remove_expert(load_registry(registry_path), name, registry_path), registry_path)
    console.print(f"removed {name} from {registry_path}")


@expert_group.command("list")
@registry_option
@click.option("--domain", help="Only experts covering this domain.")
def expert_list(registry_path: Path, domain: str | None) -> None:
    """The experts, one row each."""
    from rich.table import Table

    from opensem.console import stdout
    from opensem.routing.registry import load_registry

    registry = load_registry(registry_path)
    table = Table(
        title=f"{registry_path}: {len(registry.experts)} experts, classifier {registry.router.classifier.type}",
        title_justify="left",
    )
    for column in ("name", "domains", "keywords", "examples", "served by", "lot", "tag"):
        table.add_column(column)
    for expert in registry.listed(domain):
        table.add_row(
            expert.name,
            ", ".join(expert.domains),
            str(len(expert.keywords)),
            str(len(expert.examples)),
            ", ".join(expert.endpoints()) or "the router",
            (expert.lot or "-")[:12],
            expert.tag or "-",
        )
    stdout.print(table)


@expert_group.command("show")
@click.argument("name")
@registry_option
def expert_show(name: str, registry_path: Path) -> None:
    """One expert's entry, as JSON."""
    from opensem.errors import Location, UsageError
    from opensem.routing.registry import load_registry

    registry = load_registry(registry_path)
    expert = registry.get(name)
    if expert is None:
        raise UsageError(
            f"no expert {name!r}",
            Location(file=str(registry_path)),
            f"experts: {', '.join(e.name for e in registry.experts) or 'none'}",
        )
    click.echo(json.dumps(expert.model_dump(mode="json"), indent=2))


@cli.group("route")
def route_group() -> None:
    """Route queries to experts: classify, score the classifiers, serve the router."""


def _experts(registry_path: Path) -> tuple[Any, list[Any]]:
    """The registry and its experts, paths taken from the registry file's folder."""
    from opensem.errors import Location, UsageError
    from opensem.routing.registry import load_registry
    from opensem.routing.server import rooted

    registry = load_registry(registry_path)
    if not registry.experts:
        raise UsageError(
            "the registry holds no experts",
            Location(file=str(registry_path)),
            "add one: opensem expert add manifests/NAME.yaml",
        )
    return registry, [rooted(e, registry_path.resolve().parent) for e in registry.experts]


def _options(registry: Any, kind: str | None) -> Any:
    """The registry's classifier options, or another classifier's defaults."""
    from opensem.routing.classifiers import CLASSIFIERS

    return (
        registry.router.classifier
        if kind in (None, registry.router.classifier.type)
        else CLASSIFIERS.get(kind).Options()
    )


@route_group.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@registry_option
def route_set(assignments: tuple[str, ...], registry_path: Path) -> None:
    """Change the router's settings in the registry: fallback, classifier and its options, circuit breaker.

    \b
    Keys are those `opensem route settings` lists; values are YAML; an empty value returns a key to its default:
      opensem route set fallback=houseplants
      opensem route set classifier=neural classifier.threshold=0.4
      opensem route set failures_to_open=5 open_for_s=10
      opensem route set fallback=
    """
    from opensem.routing.registry import load_registry, save_registry, set_router

    registry, changes = set_router(load_registry(registry_path), registry_path, list(assignments))
    save_registry(registry, registry_path)
    for key, old, new in changes:
        console.print(f"router.{key}: {old!r} -> {new!r}")
    if not changes:
        console.print("nothing changed")


@route_group.command("settings")
@registry_option
def route_settings(registry_path: Path) -> None:
    """The router's settings (defaults included), one row each: what `route set` changes."""
    from rich.table import Table

    from opensem.console import stdout
    from opensem.routing.registry import load_registry, router_rows

    table = Table(title=f"{registry_path}: router", title_justify="left")
    for column in ("key", "value", "what it does"):
        table.add_column(column, overflow="fold")
    for key, value, description in router_rows(load_registry(registry_path)):
        table.add_row(key, "-" if value is None else str(value), description)
    stdout.print(table)


@route_group.command("query")
@click.argument("text", nargs=-1, required=True)
@registry_option
@click.option(
    "--classifier",
    "kind",
    type=click.Choice(["keyword", "neural", "hybrid"]),
    help="Override the registry's classifier.",
)
def route_query(text: tuple[str, ...], registry_path: Path, kind: str | None) -> None:
    """Which expert a query goes to, with the confidence and every expert's score."""
    from opensem.routing.classifiers import build_classifier
    from opensem.routing.evaluate import golden_questions

    registry, experts = _experts(registry_path)
    classifier = build_classifier(_options(registry, kind), experts, Path("build/cache"))
    if registry.router.train_on_golden:
        classifier.train([(q, e.name) for e in experts if e.golden for q in golden_questions(e)])
    click.echo(json.dumps(classifier.classify(" ".join(text)).as_dict(), indent=2))


@route_group.command("eval")
@registry_option
@click.option(
    "--questions",
    "questions_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help=(
        'Held-out questions (JSONL of {"question", "expert"}; expert null: off-topic). Without it: '
        "half the golden questions."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def route_eval(registry_path: Path, questions_path: Path | None, as_json: bool) -> None:
    """Accuracy of each classifier per expert, off-topic rejection, latency and confusion tables.

    With --questions the classifiers train on every golden question (as the router does) and are
    scored on the file; without it, half the golden questions train and the other half score.
    """
    from opensem.routing.classifiers import build_classifier
    from opensem.routing.evaluate import (
        golden_questions,
        held_out_split,
        load_questions,
        score,
        summary_table,
    )

    registry, experts = _experts(registry_path)
    if questions_path is None:
        train, test = held_out_split(experts)
        source = f"{len(train)} golden questions to train on, {len(test)} held out to score"
    else:
        test = load_questions(questions_path, experts)  # type: ignore[assignment]
        train = [(q, e.name) for e in experts if e.golden for q in golden_questions(e)]
        source = f"{len(train)} golden questions to train on, {len(test)} questions of {questions_path} to score"
    results = []
    held_out: list[tuple[str, str | None]] = list(test)
    for kind in ("keyword", "neural", "hybrid"):
        classifier = build_classifier(_options(registry, kind), experts, Path("build/cache"))
        classifier.train(train)
        results.append(score(classifier, held_out))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "train": len(train),
                    "test": len(test),
                    "classifiers": [r.as_dict() for r in results],
                },
                indent=2,
            )
        )
        return
    from opensem.routing.evaluate import confusion_table

    names = [e.name for e in experts]
    console.print(f"{len(experts)} experts; {source}")
    for result in results:
        console.print(confusion_table(result, names))
    console.print(summary_table(results, names))


@route_group.command(
    "serve", cls=ModelOptionsCommand, model="opensem.routing.config:RouteServeConfig"
)
@registry_option
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("build/cache"),
    show_default=True,
    help="Embedding cache, and releases pulled for experts the router serves itself.",
)
def route_serve(registry_path: Path, cache_dir: Path, **settings: Any) -> None:
    """Serve the router: /route, /generate, /experts, and /v1/chat/completions with model `auto`.

    Experts with an endpoint are reached there (replicas balanced, failing ones cut off by a
    circuit breaker); experts without one are served by the router itself on one shared base.
    """
    from opensem.routing.config import RouteServeConfig
    from opensem.routing.registry import load_registry
    from opensem.routing.server import RouterServer

    _setup_logging(bool((click.get_current_context().find_root().obj or {}).get("verbose")))
    config = settings_from(RouteServeConfig, settings, "opensem route serve")
    server = RouterServer(
        load_registry(registry_path), registry_path.resolve().parent, config, cache_dir
    )
    console.print(
        f"routing to {', '.join(e.name for e in server.registry.experts)} with the {server.state.classifier.name} "
        "classifier "
        f"on http://{config.host}:{config.port}; Ctrl+C stops"
    )
    server.run()
