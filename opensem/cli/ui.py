"""`opensem ui`: the browser interface over a project folder."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from opensem.cli import _setup_logging, cli
from opensem.console import console
from opensem.errors import Location, UsageError


@cli.command("ui")
@click.argument(
    "project", required=False, type=click.Path(path_type=Path, file_okay=False), default=Path(".")
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Builds run at once (each takes the machine's cores and memory).",
)
@click.option(
    "--unsafe-no-accounts",
    is_flag=True,
    help="Listen beyond this machine without sign-in: anyone who reaches the port can read every "
    "document, start builds and delete releases. Only on a network you trust.",
)
def ui(project: Path, host: str, port: int, workers: int, unsafe_no_accounts: bool) -> None:
    """Open the browser interface: experts, new experts from uploaded documents, builds followed
    live, releases. It works on the same files as the CLI, so both see the same state.

    \b
    opensem ui                      this folder, http://127.0.0.1:8000
    opensem ui ~/experts --port 9000
    """
    from opensem.serving.ops import uvicorn_server
    from opensem.ui.app import create_app

    if not _loopback(host) and not unsafe_no_accounts:
        raise UsageError(
            f"the interface has no accounts yet, so it listens only on this machine, not {host}",
            Location(key="--host"),
            hint="keep --host 127.0.0.1 (reach it through an SSH tunnel), or accept the risk "
            "with --unsafe-no-accounts",
        )
    if not (project / "manifests").is_dir():
        raise UsageError(
            f"{project} is not an opensem project (no manifests/ folder)",
            Location(file=str(project)),
            hint="run it in a project, or create one with `opensem init NAME`",
        )
    _setup_logging(bool((click.get_current_context().find_root().obj or {}).get("verbose")))
    app = create_app(project, workers)
    console.print(f"opensem ui for {project.resolve()} on http://{host}:{port}/ ; Ctrl+C stops")
    uvicorn_server(app, host, port).run()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
