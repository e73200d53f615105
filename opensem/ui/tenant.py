"""The person an interface is made for, under `opensem ui --accounts`: their jobs live in the
accounts database, what they do goes to its audit log, and their provider jobs count against
their monthly budget."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opensem.accounts.budgets import Allowance, Budgets
    from opensem.accounts.service import Accounts


@dataclass(frozen=True)
class Tenant:
    """A signed-in person's side of the accounts database."""

    user_id: int
    label: str  # how the header names them
    accounts: Accounts
    budgets: Budgets
    # Held from a paid build's budget check until its job is queued: two builds at once cannot
    # both fit in what is left
    spending: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def audit(self, action: str, target: str) -> None:
        """Record something the person did."""
        self.accounts.audit(self.user_id, action, target)

    def allowance(self) -> Allowance:
        """Their budget for provider jobs this month."""
        return self.budgets.allowance(self.user_id)
