"""`opensem serve`: an OpenAI-compatible server for published releases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from opensem.cli import _setup_logging, cli
from opensem.cli.accounts import database_option, open_accounts
from opensem.cli.options import ModelOptionsCommand, settings_from
from opensem.console import console
from opensem.errors import Location, UsageError


@cli.command("serve", cls=ModelOptionsCommand, model="opensem.serving.config:ServeConfig")
@click.argument("sources", nargs=-1)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("build/cache/releases"),
    show_default=True,
    help="Where releases pulled from a registry are kept (checked against their digests before each use).",
)
@click.option(
    "--accounts",
    "accounts_project",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    metavar="PROJECT",
    help="Serve the people of `opensem ui --accounts PROJECT`: every person's published experts "
    "(or SOURCES under PROJECT/users/), each reached only with its owner's own API keys (made "
    "on their account page); --api-key-env is not used.",
)
@database_option
def serve(
    sources: tuple[str, ...],
    cache_dir: Path,
    accounts_project: Path | None,
    database: str | None,
    **settings: Any,
) -> None:
    """Serve releases behind an OpenAI-compatible API (/v1/chat/completions, /v1/completions).

    \b
    SOURCES, each [name=]WHERE[@tag][#folded]:
      manifests/tiny-demo.yaml              the manifest's latest published release
      build/registry/houseplants@v1         a registry folder of an expert, a tag (default: the latest)
      s3://bucket/registry/houseplants      any fsspec URL
      ./pulled/release                      a release folder (opensem pull)
    Adapters of one base share one loaded model; a request's `model` picks the release.
    The API key comes from $OPENSEM_API_KEY (see --api-key-env).

    \b
    With --accounts PROJECT and no SOURCES, every person's published experts are served, each
    under its own name and only to its owner's keys (--watch adds newly published ones).
    """
    from opensem.serving.config import ServeConfig
    from opensem.serving.server import Server

    _setup_logging(bool((click.get_current_context().find_root().obj or {}).get("verbose")))
    config = settings_from(ServeConfig, settings, "opensem serve")
    tenancy = None
    if accounts_project is not None:
        from opensem.serving.tenancy import Tenancy

        tenancy = Tenancy(accounts_project, open_accounts(accounts_project, database))
    elif not sources:
        raise UsageError(
            "nothing to serve: name at least one release source",
            Location(key="SOURCES"),
            "e.g. `opensem serve manifests/tiny-demo.yaml`, or --accounts PROJECT",
        )
    server = Server(list(sources), config, cache_dir, tenancy=tenancy)
    names = ", ".join(r.name for r in server.releases) or "nothing yet"
    console.print(f"serving {names} with the {server.state.pool.backend} backend; Ctrl+C stops")
    server.run()
