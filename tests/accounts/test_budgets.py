"""Monthly budgets for provider jobs: a person's own limit wins over the default, jobs count at
the cost confirmed for them this calendar month, and a job over what is left is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from opensem.accounts.budgets import Allowance, Budgets, OverBudget, month_start
from opensem.accounts.database import open_database
from opensem.accounts.models import JobRow
from opensem.accounts.service import Accounts
from opensem.errors import UsageError
from opensem.ui.jobs import JobQueue
from tests.accounts.test_accounts import Clock

DECEMBER_4 = 1_796_371_200.0  # 2026-12-04 00:00 UTC


def test_jobs_count_at_their_confirmed_cost_this_month(database_url: str, tmp_path: Path) -> None:
    clock = Clock()
    clock.now = DECEMBER_4
    accounts = Accounts(open_database(database_url), clock=clock)
    ana, _ = accounts.sign_in(accounts.request_link("ana@example.org", "a"), "a")
    budgets = Budgets(accounts, default_usd=10.0)
    assert budgets.allowance(ana.id) == Allowance(10.0, 0.0)

    queue = JobQueue(tmp_path, database=accounts.engine, owner=ana.id)
    queue.submit("manifests/coffee.yaml", cost_usd=4.0)
    cancelled = queue.submit("manifests/tea.yaml", cost_usd=3.0)
    queue.cancel(cancelled.id)  # before it started: it spent nothing
    last_month = queue.submit("manifests/mate.yaml", until="ingest", cost_usd=5.0)
    with accounts.engine.begin() as db:
        db.execute(
            update(JobRow)
            .where(JobRow.number == last_month.id)
            .values(created=month_start(DECEMBER_4) - 1, state="done")
        )
    allowance = budgets.allowance(ana.id)
    assert allowance == Allowance(10.0, 4.0) and allowance.left == 6.0
    allowance.check(6.0)
    with pytest.raises(OverBudget) as over:
        allowance.check(6.5)
    assert "$6.50" in over.value.message and "$6.00 of your $10.00" in over.value.message
    assert "opensem accounts budget" in over.value.hint
    with pytest.raises(OverBudget, match="not known yet"):
        allowance.check(None)  # an estimate still waiting for the documents

    budgets.set_limit(ana.id, 2.0)
    assert budgets.allowance(ana.id).left == 0.0  # own limit wins; nothing is left
    budgets.set_limit(ana.id, None)
    assert budgets.allowance(ana.id).limit == 10.0  # the default again
    Budgets(accounts).allowance(ana.id).check(None)  # no limit at all: nothing is refused
    with pytest.raises(UsageError, match="below 0"):
        budgets.set_limit(ana.id, -1.0)
    # Another person's jobs are theirs alone
    bo, _ = accounts.sign_in(accounts.request_link("bo@example.org", "b"), "b")
    assert budgets.allowance(bo.id).spent == 0.0
    bo_jobs = JobQueue(tmp_path, database=accounts.engine, owner=bo.id)
    assert bo_jobs.get(cancelled.id) is None
    assert bo_jobs.submit("manifests/coffee.yaml").id == 1  # his own numbers: Ana's 3 do not show
    assert [job.id for job in bo_jobs.recent()] == [1] and len(queue.recent()) == 3
