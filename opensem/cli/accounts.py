"""`opensem accounts`: the admin's view of the people of `opensem ui --accounts`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from opensem.cli import cli
from opensem.console import console
from opensem.core.files import tally
from opensem.errors import Location, UsageError

if TYPE_CHECKING:
    from opensem.accounts.models import User
    from opensem.accounts.service import Accounts

project_option = click.option(
    "--project",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="The folder `opensem ui --accounts` serves (people's projects are under users/).",
)
database_option = click.option(
    "--database",
    metavar="URL",
    help="The accounts database [default: PROJECT/build/ui/accounts.sqlite].",
)


@cli.group("accounts")
def accounts_group() -> None:
    """List, disable, enable and delete the people of `opensem ui --accounts`; read the audit log."""


def open_accounts(project: Path, database: str | None) -> Accounts:
    """The accounts of the folder `opensem ui --accounts` serves (or of the database named)."""
    from opensem.accounts.database import open_database, sqlite_url
    from opensem.accounts.homes import default_database
    from opensem.accounts.service import Accounts

    path = default_database(project.resolve())
    if database is None and not path.is_file():
        raise UsageError(
            f"{project} has no accounts yet ({path} does not exist)",
            Location(key="--project"),
            "run `opensem ui --accounts` there first, or name the database with --database",
        )
    return Accounts(open_database(database or sqlite_url(path)))


def _find(accounts: Accounts, who: str) -> User:
    for user in accounts.users():
        if who in (str(user.id), user.email, user.name):
            return user
    raise UsageError(
        f"no one is called {who!r}", Location(key="USER"), "see `opensem accounts list`"
    )


@accounts_group.command("list")
@project_option
@database_option
def list_accounts(project: Path, database: str | None) -> None:
    """Everyone, with how they sign in and whether they are disabled."""
    from rich.table import Table

    table = Table(title_justify="left")
    for column in ("id", "email", "GitHub", "name", "since", "state", "budget"):
        table.add_column(column, overflow="fold")
    for user in open_accounts(project, database).users():
        table.add_row(
            str(user.id),
            user.email or "",
            user.github_id or "",
            user.name,
            time.strftime("%Y-%m-%d", time.localtime(user.created)),
            "disabled" if user.disabled else "active",
            "default" if user.monthly_budget_usd is None else f"${user.monthly_budget_usd:.2f}",
        )
    console.print(table)


@accounts_group.command("disable")
@click.argument("who", metavar="USER")
@project_option
@database_option
def disable(who: str, project: Path, database: str | None) -> None:
    """Stop someone signing in; their sessions end at once (USER: id, email or name)."""
    _set_disabled(who, project, database, True)


@accounts_group.command("enable")
@click.argument("who", metavar="USER")
@project_option
@database_option
def enable(who: str, project: Path, database: str | None) -> None:
    """Let someone sign in again."""
    _set_disabled(who, project, database, False)


@accounts_group.command("admin")
@click.argument("who", metavar="USER")
@project_option
@database_option
@click.option("--revoke", is_flag=True, help="Take the admin page away again.")
def admin(who: str, project: Path, database: str | None, revoke: bool) -> None:
    """Give someone the admin page (/admin: list, disable, enable and delete people)."""
    accounts, user, name = _person(project, database, who)
    accounts.set_admin(user.id, not revoke)
    console.print(f"{name} is no longer an admin" if revoke else f"{name} is an admin")


def _set_disabled(who: str, project: Path, database: str | None, disabled: bool) -> None:
    accounts, user, name = _person(project, database, who)
    accounts.set_disabled(user.id, disabled)
    console.print(f"{name} is disabled" if disabled else f"{name} may sign in again")


def _person(project: Path, database: str | None, who: str) -> tuple[Accounts, User, str]:
    """The accounts, the person USER names, and how to call them."""
    accounts = open_accounts(project, database)
    user = _find(accounts, who)
    return accounts, user, user.email or user.name


@accounts_group.command("budget")
@click.argument("who", metavar="USER")
@click.argument("amount", metavar="USD")
@project_option
@database_option
def budget(who: str, amount: str, project: Path, database: str | None) -> None:
    """Set what someone's provider jobs may cost a month, in dollars (USD: a number, or
    `default` for the interface's --monthly-budget-usd)."""
    from opensem.accounts.budgets import Budgets, parse_usd

    accounts, user, name = _person(project, database, who)
    usd = parse_usd(amount, "USD", "default")
    Budgets(accounts).set_limit(user.id, usd)
    what = "the interface's default" if usd is None else f"${usd:.2f} a month"
    console.print(f"{name}'s provider jobs may now cost {what}")


@accounts_group.command("delete")
@click.argument("who", metavar="USER")
@project_option
@database_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(who: str, project: Path, database: str | None, yes: bool) -> None:
    """Delete someone: their account, sessions, API keys, jobs and their whole project folder
    (documents, data, feedback, store, releases)."""
    from opensem.accounts.homes import home, remove_person

    accounts, user, name = _person(project, database, who)
    folder = home(project.resolve(), user)
    files, size = tally(folder)
    console.print(
        f"deleting {name}: the account, its sessions, API keys and jobs, and {folder} "
        f"({files} files, {size / 1e6:.1f} MB)"
    )
    if not yes:
        click.confirm("delete for good?", abort=True)
    files, size = remove_person(accounts, project.resolve(), user)
    console.print(
        f"deleted: the account, its sessions, API keys and jobs, {files} files ({size / 1e6:.1f} MB)"
    )


@accounts_group.command("audit")
@click.argument("who", metavar="[USER]", required=False)
@project_option
@database_option
def audit(who: str | None, project: Path, database: str | None) -> None:
    """Sign-ins, jobs, publishes, downloads and deletions, oldest first (one person's with USER)."""
    accounts = open_accounts(project, database)
    user_id = _find(accounts, who).id if who else None
    for at, user, action, target in accounts.audit_log(user_id):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
        console.print(f"{stamp}  {user if user is not None else '-':>4}  {action:<22} {target}")
