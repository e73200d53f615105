"""`opensem ui`: the browser interface over a project folder."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

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
@click.option(
    "--accounts",
    is_flag=True,
    help="Sign-in first (an emailed link, or GitHub): each person gets their own experts under "
    "PROJECT/users/, and no one reaches another's. Required to listen beyond this machine.",
)
@click.option(
    "--database",
    metavar="URL",
    help="Where accounts live: sqlite:///FILE or postgresql+psycopg://USER@HOST/NAME "
    "[default: PROJECT/build/ui/accounts.sqlite].",
)
@click.option(
    "--smtp",
    default="127.0.0.1:25",
    show_default=True,
    metavar="HOST:PORT",
    help="The SMTP server sign-in emails go through.",
)
@click.option(
    "--public-url", metavar="URL", help="The address people use, for the links in emails."
)
@click.option(
    "--github-client-id",
    envvar="OPENSEM_GITHUB_CLIENT_ID",
    metavar="ID",
    help="Offer GitHub sign-in with this OAuth app (its secret in OPENSEM_GITHUB_SECRET).",
)
@click.option(
    "--github-url",
    envvar="OPENSEM_GITHUB_URL",
    metavar="URL",
    help="A GitHub Enterprise Server's address, for GitHub sign-in there [default: github.com].",
)
@click.option(
    "--monthly-budget-usd",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="With --accounts: what each person's builds at providers may cost a month, unless "
    "`opensem accounts budget` gave them their own [default: no limit].",
)
def ui(
    project: Path,
    host: str,
    port: int,
    workers: int,
    unsafe_no_accounts: bool,
    accounts: bool,
    database: str | None,
    smtp: str,
    public_url: str | None,
    github_client_id: str | None,
    github_url: str | None,
    monthly_budget_usd: float | None,
) -> None:
    """Open the browser interface: experts, new experts from uploaded documents, builds followed
    live, releases. It works on the same files as the CLI, so both see the same state.

    \b
    opensem ui                      this folder, http://127.0.0.1:8000
    opensem ui ~/experts --port 9000
    """
    from opensem.serving.ops import uvicorn_server
    from opensem.ui.app import create_app

    if not _loopback(host) and not (unsafe_no_accounts or accounts):
        raise UsageError(
            f"without --accounts the interface listens only on this machine, not {host}",
            Location(key="--host"),
            hint="add --accounts (sign-in, each person's own experts), keep --host 127.0.0.1 "
            "(reach it through an SSH tunnel), or accept the risk with --unsafe-no-accounts",
        )
    if not accounts and not (project / "manifests").is_dir():
        raise UsageError(
            f"{project} is not an opensem project (no manifests/ folder)",
            Location(file=str(project)),
            hint="run it in a project, or create one with `opensem init NAME`",
        )
    _setup_logging(bool((click.get_current_context().find_root().obj or {}).get("verbose")))
    public = public_url or f"http://{host}:{port}"
    app: Any = (
        _gate(
            project,
            workers,
            database,
            smtp,
            public,
            github_client_id,
            github_url,
            monthly_budget_usd,
        )
        if accounts
        else create_app(project, workers)
    )
    console.print(f"opensem ui for {project.resolve()} on http://{host}:{port}/ ; Ctrl+C stops")
    uvicorn_server(app, host, port).run()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _gate(
    project: Path,
    workers: int,
    database: str | None,
    smtp: str,
    public_url: str,
    github_client_id: str | None,
    github_url: str | None,
    monthly_budget_usd: float | None,
) -> Any:
    """The interface behind sign-in (opensem.ui.gate)."""
    from opensem.accounts.database import open_database, sqlite_url
    from opensem.accounts.github import GitHubSettings, enterprise
    from opensem.accounts.homes import default_database
    from opensem.accounts.mail import MailSettings
    from opensem.accounts.service import Accounts
    from opensem.ui.gate import Gate, GateSettings

    host, _, port = smtp.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(
            f"--smtp {smtp!r} is not HOST:PORT", Location(key="--smtp"), "e.g. --smtp 127.0.0.1:25"
        )
    base = project.resolve()
    url = database or sqlite_url(default_database(base))
    default_database(base).parent.mkdir(parents=True, exist_ok=True)
    settings = GateSettings(
        base=base,
        database_url=url,
        mail=MailSettings(host=host, port=int(port)),
        public_url=public_url,
        github=(
            None
            if not github_client_id
            else enterprise(github_client_id, github_url)
            if github_url
            else GitHubSettings(client_id=github_client_id)
        ),
        workers=workers,
        monthly_budget_usd=monthly_budget_usd,
    )
    return Gate(settings, Accounts(open_database(url)))
