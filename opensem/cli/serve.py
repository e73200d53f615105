"""`opensem serve`: an OpenAI-compatible server for published releases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from opensem.cli import _setup_logging, cli
from opensem.cli.options import ModelOptionsCommand, settings_from
from opensem.console import console


@cli.command("serve", cls=ModelOptionsCommand, model="opensem.serving.config:ServeConfig")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("build/cache/releases"),
    show_default=True,
    help="Where releases pulled from a registry are kept (checked against their digests before each use).",
)
def serve(sources: tuple[str, ...], cache_dir: Path, **settings: Any) -> None:
    """Serve releases behind an OpenAI-compatible API (/v1/chat/completions, /v1/completions).

    \b
    SOURCES, each [name=]WHERE[@tag][#folded]:
      manifests/tiny-demo.yaml              the manifest's latest published release
      build/registry/houseplants@v1         a registry folder of an expert, a tag (default: the latest)
      s3://bucket/registry/houseplants      any fsspec URL
      ./pulled/release                      a release folder (opensem pull)
    Adapters of one base share one loaded model; a request's `model` picks the release.
    The API key comes from $OPENSEM_API_KEY (see --api-key-env).
    """
    from opensem.serving.config import ServeConfig
    from opensem.serving.server import Server

    _setup_logging(bool((click.get_current_context().find_root().obj or {}).get("verbose")))
    config = settings_from(ServeConfig, settings, "opensem serve")
    server = Server(list(sources), config, cache_dir)
    console.print(
        f"serving {', '.join(r.name for r in server.releases)} with the {server.state.pool.backend} backend; Ctrl+C "
        "stops"
    )
    server.run()
