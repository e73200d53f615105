"""API keys for `opensem serve --accounts`: made by a person, shown once, kept as a digest.

A key names its owner and nothing else: the server serves each person's releases under their
own names, and a key reaches only its owner's. Revoking a key, or disabling its owner, stops it
at the next request.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from opensem.accounts.service import digest

if TYPE_CHECKING:
    from opensem.accounts.models import ApiKey, User
    from opensem.accounts.service import Accounts

PREFIX = "osk_"  # so a leaked key is recognisable in a scan
SHOWN = 10  # characters of a key listed to tell keys apart
TOUCH_S = 60.0  # last_used is written at most this often per key


class ApiKeys:
    """The API keys in the accounts database."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def make(self, user_id: int, label: str, address: str = "") -> str:
        """A new key for a person; the only time it is seen in full."""
        from sqlalchemy import func, select

        from opensem.accounts.models import ApiKey

        key = PREFIX + secrets.token_urlsafe(32)
        label = " ".join(label.split())[:100] or "key"
        with self.accounts.session() as db:
            last = db.scalar(select(func.max(ApiKey.number)).where(ApiKey.user_id == user_id))
            row = ApiKey(
                user_id=user_id,
                number=(last or 0) + 1,
                digest=digest(key),
                label=label,
                shown=key[:SHOWN],
                created=self.accounts.clock(),
                revoked=False,
            )
            db.add(row)
            self.accounts.audit_within(
                db, user_id, "api key made", f"#{row.number} {label}", address
            )
            db.commit()
        return key

    def of(self, user_id: int) -> list[ApiKey]:
        """A person's keys that still work, newest first."""
        from sqlalchemy import select

        from opensem.accounts.models import ApiKey

        query = select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked.is_(False))
        with self.accounts.session() as db:
            return list(db.scalars(query.order_by(ApiKey.id.desc())))

    def revoke(self, user_id: int, number: int, address: str = "") -> bool:
        """Stop a person's key by its number; False when they have no such key (the numbers are
        each person's own: another's key is not theirs to name)."""
        from sqlalchemy import select

        from opensem.accounts.models import ApiKey

        with self.accounts.session() as db:
            row = db.scalar(
                select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.number == number)
            )
            if row is None or row.revoked:
                return False
            row.revoked = True
            self.accounts.audit_within(db, user_id, "api key revoked", f"#{number}", address)
            db.commit()
        return True

    def owner(self, key: str) -> User | None:
        """Whose key this is, while it is not revoked and they are not disabled."""
        from sqlalchemy import select

        from opensem.accounts.models import ApiKey, User

        if not key.startswith(PREFIX):
            return None
        now = self.accounts.clock()
        with self.accounts.session() as db:
            row = db.scalar(select(ApiKey).where(ApiKey.digest == digest(key)))
            if row is None or row.revoked:
                return None
            user = db.get(User, row.user_id)
            if user is None or user.disabled:
                return None
            if row.last_used is None or now - row.last_used > TOUCH_S:
                row.last_used = now
                db.commit()
            return user
