"""What provider jobs may cost a person each month, and what they have cost.

A paid build is counted at the upper bound the person confirmed before it started (the build's
own estimate: answers priced at max_tokens), from the moment it is queued; a job cancelled
before it started is not counted. Months are calendar months in UTC. A person's own limit, set
by an admin, wins over the interface's default; no limit at all means provider jobs are not
counted against anything.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opensem.errors import Location, OpensemError, UsageError

if TYPE_CHECKING:
    from opensem.accounts.service import Accounts


class OverBudget(OpensemError):
    """A provider job that would take a person past their monthly budget."""


@dataclass(frozen=True)
class Allowance:
    """A person's budget this month."""

    limit: float | None  # USD a month; None: unlimited
    spent: float  # this month, at the confirmed upper bounds

    @property
    def left(self) -> float | None:
        """What may still be spent this month."""
        return None if self.limit is None else max(0.0, self.limit - self.spent)

    def check(self, cost: float | None) -> None:
        """OverBudget unless a job costing up to cost fits; an unknown cost fits only when
        nothing is limited."""
        if self.limit is None:
            return
        if cost is None:
            raise OverBudget(
                "this build's cost at the provider is not known yet, and your provider jobs "
                f"have a monthly budget (${self.left:.2f} of ${self.limit:.2f} left)",
                Location(key="budget"),
                "read the documents first (free) so the estimate is known, and give the teacher "
                "its prices in synthesis.budget",
            )
        if cost > (self.left or 0.0):
            raise OverBudget(
                f"this build may cost up to ${cost:.2f}, and ${self.left:.2f} of your "
                f"${self.limit:.2f} monthly budget for provider jobs is left",
                Location(key="budget"),
                "lower the build's max_tokens or pairs_per_chunk, wait for next month, or ask an "
                "admin to raise your budget (`opensem accounts budget`)",
            )


def parse_usd(text: str, key: str, default_word: str = "") -> float | None:
    """A budget as typed (the admin page, `opensem accounts budget`): dollars, or None for
    default_word (the interface's default)."""
    text = text.strip()
    if text == default_word:
        return None
    try:
        return float(text)
    except ValueError:
        example = f"e.g. 20 or {default_word}" if default_word else "e.g. 20, or empty"
        raise UsageError(
            f"{text!r} is not an amount of dollars", Location(key=key), example
        ) from None


def month_start(now: float) -> float:
    """The first second of now's calendar month, UTC."""
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


class Budgets:
    """People's monthly limits (the default's when they have none of their own) and spending."""

    def __init__(self, accounts: Accounts, default_usd: float | None = None) -> None:
        self.accounts, self.default_usd = accounts, default_usd  # the CLI keeps it >= 0

    def allowance(self, user_id: int) -> Allowance:
        """A person's limit and what their jobs cost this month."""
        from sqlalchemy import func, or_, select

        from opensem.accounts.models import JobRow, User

        since = month_start(self.accounts.clock())
        with self.accounts.session() as db:
            user = db.get(User, user_id)
            own = user.monthly_budget_usd if user is not None else None
            spent = db.scalar(
                select(func.coalesce(func.sum(JobRow.cost_usd), 0.0)).where(
                    JobRow.user_id == user_id,
                    JobRow.created >= since,
                    or_(JobRow.state != "cancelled", JobRow.started.is_not(None)),
                )
            )
        return Allowance(own if own is not None else self.default_usd, float(spent or 0.0))

    def set_limit(self, user_id: int, usd: float | None, by: int | None = None) -> None:
        """Give a person a monthly limit of their own, or None to follow the default again."""
        from opensem.accounts.models import User

        if usd is not None and usd < 0:
            raise UsageError(
                f"a monthly budget of {usd} is below 0", Location(key="USD"), "give 0 or more"
            )
        with self.accounts.session() as db:
            user = db.get(User, user_id)
            if user is None:
                raise UsageError(f"no user {user_id}", Location(key="user"), "see the user list")
            user.monthly_budget_usd = usd
            what = "the default" if usd is None else f"${usd:.2f} a month"
            self.accounts.audit_within(db, by, "budget set", f"user {user_id}: {what}", "")
            db.commit()
