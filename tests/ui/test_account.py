"""A person's provider budget under `opensem ui --accounts`: a paid build over what is left is
refused before it is queued (the teacher hears nothing), an admin raises the budget, and the
account page says what the month's builds were confirmed at."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import requests

from tests.accounts.conftest import Inbox, database_url, postgres_server, smtp  # noqa: F401 (fixtures)
from tests.cli import run_cli
from tests.pdf import write_pdf
from tests.servers.openai_compatible import OpenAICompatibleServer
from tests.stages.test_synthesize import teacher_answer
from tests.ui.conftest import RunningUI, job_ends, start_ui
from tests.ui.test_gate import csrf_of, sign_in

PLANTED = "sk-ana-" + secrets.token_hex(16)


def _paid_expert(
    ui: RunningUI, client: requests.Session, server: OpenAICompatibleServer, pdf: Path
) -> str:
    token = csrf_of(client, ui.url + "/experts/new")
    made = client.post(
        ui.url + "/experts/new",
        data={
            "csrf": token,
            "name": "coffee",
            "base": "tiny",
            "teacher": "openai",
            "teacher_model": "teacher",
            "teacher_base_url": server.url,
            "teacher_key": PLANTED,
            "teacher_key_env": "COFFEE_TEACHER_KEY",
            "teacher_price_in": "150",
            "teacher_price_out": "600",
            "teacher_max_cost": "50",
        },
        files=[("documents", ("grinder.pdf", pdf.read_bytes(), "application/pdf"))],
        allow_redirects=False,
    )
    assert made.status_code == 303, made.text
    return token


def test_a_paid_build_over_the_persons_budget_is_refused_before_it_is_queued(
    tmp_path: Path,
    database_url: str,  # noqa: F811
    smtp: Inbox,  # noqa: F811
) -> None:
    """On SQLite and on PostgreSQL (`--database`)."""
    pdf = write_pdf(tmp_path / "g.pdf", [["Brush the burrs weekly.", "Descale every month."]])
    (tmp_path / "project").mkdir()
    ui = start_ui(
        tmp_path / "project",
        "--accounts",
        "--smtp",
        f"127.0.0.1:{smtp.port}",
        "--public-url",
        "http://x",
        "--monthly-budget-usd",
        "0.01",
        "--database",
        database_url,
    )
    try:
        with OpenAICompatibleServer() as server:
            server.answer = teacher_answer
            ana = sign_in(ui, smtp, "ana@example.org")
            token = _paid_expert(ui, ana, server, pdf)
            home = next((tmp_path / "project" / "users").iterdir())
            read = ana.post(
                ui.url + "/experts/coffee/generate",
                data={"csrf": token, "until": "ingest"},
                allow_redirects=False,
            )
            assert job_ends(home, read.headers["location"], database=database_url) == "done"

            confirm = ana.get(ui.url + "/experts/coffee/confirm?until=synthesize").text
            assert (
                'id="over-budget"' in confirm and "<strong>$0.01</strong> of $0.01 left" in confirm
            )
            assert re.search(r'id="confirm-build" disabled', confirm)
            jobs_before = ana.get(ui.url + "/jobs").text.count('href="/jobs/')
            build = {"csrf": token, "until": "synthesize", "accept": "on"}
            refused = ana.post(ui.url + "/experts/coffee/build", data=build, allow_redirects=False)
            assert refused.status_code == 400 and "monthly budget" in refused.text
            assert "Traceback" not in refused.text
            assert ana.get(ui.url + "/jobs").text.count('href="/jobs/') == jobs_before
            assert server.count == 0

            code, said = run_cli(
                "accounts", "budget", "ana@example.org", "100", "--database", database_url
            )
            assert code == 0 and "$100.00 a month" in said
            built = ana.post(ui.url + "/experts/coffee/build", data=build, allow_redirects=False)
            assert job_ends(home, built.headers["location"], database=database_url) == "done"
            assert server.count > 0

            page = ana.get(ui.url + "/account").text
            spent = re.search(r"confirmed at up to <strong>\$([0-9.]+)</strong>", page)
            assert spent is not None and 0 < float(spent.group(1)) < 100
            assert "$100.00" in page
            code, log = run_cli("accounts", "audit", "ana@example.org", "--database", database_url)
            assert code == 0 and "at providers" in log and "budget set" not in log  # the admin's
            code, listed = run_cli("accounts", "list", "--database", database_url)
            assert "$100.00" in listed
            code, wrong = run_cli(
                "accounts", "budget", "ana@example.org", "lots", "--database", database_url
            )
            assert code == 2 and "not an amount of dollars" in wrong
    finally:
        ui.stop()
    assert server.authorization and set(server.authorization) == {f"Bearer {PLANTED}"}
    # The key reached the teacher and nothing else: no file of the project (the accounts
    # database, every person's folder, job logs and events) and no line of the interface's log
    holding = [p for p in tmp_path.rglob("*") if p.is_file() and PLANTED.encode() in p.read_bytes()]
    assert holding == []
    assert _rows_holding(database_url, PLANTED) == []  # every row of every table, PostgreSQL too


def _rows_holding(url: str, text: str) -> list[str]:
    from sqlalchemy import create_engine, select

    from opensem.accounts.models import Base

    engine = create_engine(url)
    try:
        with engine.connect() as db:
            return [
                table.name
                for table in Base.metadata.sorted_tables
                for row in db.execute(select(table))
                if text in repr(tuple(row))
            ]
    finally:
        engine.dispose()
