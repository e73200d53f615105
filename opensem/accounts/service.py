"""Signing in by an emailed one-time link, sessions, rate limits, and what an admin may do.

Tokens (links and sessions) are random, shown once, and stored as their SHA-256. Every refusal
of a link says the same thing whatever the reason (unknown, used, expired, a disabled person), so
a refusal tells a guesser nothing. Sign-in requests are limited per email and per address over a
sliding window, counted in the database, so the limit holds across workers and restarts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opensem.errors import Location, OpensemError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from opensem.accounts.models import User

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class SignInRefused(OpensemError):
    """A link or session that signs no one in; the message never says why."""


class RateLimited(OpensemError):
    """Too many sign-in requests for one email or from one address."""


@dataclass(frozen=True)
class Limits:
    """How long links and sessions last, and how many sign-in requests a window allows."""

    link_s: float = 15 * 60
    session_s: float = 30 * 24 * 3600
    window_s: float = 15 * 60
    per_email: int = 3
    per_address: int = 10


def digest(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """The accounts in one database; clock is injectable so expiry is testable without waiting."""

    def __init__(
        self, engine: Engine, limits: Limits = Limits(), clock: Callable[[], float] = time.time
    ) -> None:
        self.engine, self.limits, self.clock = engine, limits, clock

    def session(self) -> Session:
        """A database session (the other account modules share it)."""
        from sqlalchemy.orm import Session

        return Session(self.engine, expire_on_commit=False)

    def request_link(self, email: str, address: str) -> str:
        """A new one-time sign-in token for email (to be mailed as a link); RateLimited when
        this email or address asked too often lately."""
        from opensem.accounts.models import Attempt, SignInLink

        email = email.strip().lower()
        if not EMAIL.match(email):
            raise UsageError(
                f"{email!r} is not an email address", Location(key="email"), "type it again"
            )
        now = self.clock()
        with self.session() as db:
            for key, allowed in (
                (f"email:{email}", self.limits.per_email),
                (f"address:{address}", self.limits.per_address),
            ):
                if self._recent(db, key, now) >= allowed:
                    minutes = round(self.limits.window_s / 60)
                    raise RateLimited(
                        "too many sign-in requests",
                        Location(key="email"),
                        f"wait {minutes} minutes, then ask for a new link",
                    )
            db.add_all(
                [Attempt(key=f"email:{email}", at=now), Attempt(key=f"address:{address}", at=now)]
            )
            token = secrets.token_urlsafe(32)
            db.add(
                SignInLink(
                    digest=digest(token), email=email, expires=now + self.limits.link_s, used=False
                )
            )
            self.audit_within(db, None, "sign-in link sent", email, address)
            db.commit()
        return token

    def _recent(self, db: Session, key: str, now: float) -> int:
        from sqlalchemy import delete, func, select

        from opensem.accounts.models import Attempt

        db.execute(delete(Attempt).where(Attempt.at < now - self.limits.window_s))
        return int(db.scalar(select(func.count()).where(Attempt.key == key)) or 0)

    def sign_in(self, token: str, address: str) -> tuple[User, str]:
        """(the person, a new session token) for a valid link, used up by this; a first sign-in
        makes the account."""
        from sqlalchemy import select

        from opensem.accounts.models import SignInLink, User

        now = self.clock()
        with self.session() as db:
            link = db.get(SignInLink, digest(token), with_for_update=True)
            if link is None or link.used or link.expires < now:
                raise refused()
            link.used = True
            user = db.scalar(select(User).where(User.email == link.email))
            made = {"email": link.email, "name": link.email.split("@")[0]}
            return self._admit(db, user, made, "email link", address, "this sign-in link")

    def sign_in_external(self, github_id: str, login: str, address: str) -> tuple[User, str]:
        """(the person, a new session token) for a GitHub account, made on its first sign-in;
        matched by GitHub's id alone, never by an email."""
        from sqlalchemy import select

        from opensem.accounts.models import User

        with self.session() as db:
            user = db.scalar(select(User).where(User.github_id == github_id))
            made = {"github_id": github_id, "name": login}
            return self._admit(db, user, made, "github", address, "this GitHub sign-in")

    def _admit(
        self,
        db: Session,
        user: User | None,
        made: dict[str, str],
        how: str,
        address: str,
        refusal: str,
    ) -> tuple[User, str]:
        """Sign in a person found by their link or GitHub id, making the account (with made's
        fields) on a first sign-in; a disabled person is refused."""
        from opensem.accounts.models import User

        now = self.clock()
        if user is None:
            user = User(
                **made, folder=secrets.token_hex(16), created=now, is_admin=False, disabled=False
            )
            db.add(user)
            db.flush()
            self.audit_within(db, user.id, "account made", how, address)
        if user.disabled:
            db.commit()
            raise refused(refusal)
        session = self._new_session(db, user.id, now)
        self.audit_within(db, user.id, "sign-in", how, address)
        db.commit()
        return user, session

    def _new_session(self, db: Session, user_id: int, now: float) -> str:
        from opensem.accounts.models import SignedIn

        token = secrets.token_urlsafe(32)
        db.add(
            SignedIn(
                digest=digest(token),
                user_id=user_id,
                created=now,
                expires=now + self.limits.session_s,
                revoked=False,
            )
        )
        return token

    def user(self, session: str) -> User | None:
        """Who a session token belongs to, while it is valid and they are not disabled."""
        from opensem.accounts.models import SignedIn, User

        with self.session() as db:
            found = db.get(SignedIn, digest(session))
            if found is None or found.revoked or found.expires < self.clock():
                return None
            user = db.get(User, found.user_id)
            return None if user is None or user.disabled else user

    def sign_out(self, session: str) -> None:
        """End one session (this browser's)."""
        from opensem.accounts.models import SignedIn

        with self.session() as db:
            found = db.get(SignedIn, digest(session))
            if found is not None:
                found.revoked = True
                self.audit_within(db, found.user_id, "signed out", "", "")
            db.commit()

    def sign_out_everywhere(self, user_id: int, address: str = "") -> int:
        """Revoke every session of a person; how many were live."""
        from sqlalchemy import update

        from opensem.accounts.models import SignedIn

        with self.session() as db:
            done = db.execute(
                update(SignedIn)
                .where(SignedIn.user_id == user_id, SignedIn.revoked.is_(False))
                .values(revoked=True)
            )
            self.audit_within(db, user_id, "signed out everywhere", "", address)
            db.commit()
        return int(getattr(done, "rowcount", 0) or 0)

    def users(self) -> list[User]:
        """Everyone, oldest first (the admin's list)."""
        from sqlalchemy import select

        from opensem.accounts.models import User

        with self.session() as db:
            return list(db.scalars(select(User).order_by(User.id)))

    def set_disabled(self, user_id: int, disabled: bool, by: int | None = None) -> None:
        """Disable a person (their sessions stop working at once) or enable them again."""
        self._update(user_id, "disabled", disabled, "disabled" if disabled else "enabled", by)

    def set_admin(self, user_id: int, admin: bool) -> None:
        """Make someone an admin (the admin page lists, disables and deletes people) or not."""
        self._update(user_id, "is_admin", admin, "made admin" if admin else "no longer admin")

    def _update(
        self, user_id: int, column: str, value: bool, action: str, by: int | None = None
    ) -> None:
        from opensem.accounts.models import User

        with self.session() as db:
            user = db.get(User, user_id)
            if user is None:
                raise UsageError(f"no user {user_id}", Location(key="user"), "see the user list")
            setattr(user, column, value)
            self.audit_within(db, by, action, f"user {user_id}", "")
            db.commit()

    def delete_user(self, user_id: int, by: int | None = None) -> User:
        """Remove a person and their sessions; returns them (the caller removes their folder)."""
        from sqlalchemy import delete

        from opensem.accounts.models import SignedIn, SignInLink, User

        with self.session() as db:
            user = db.get(User, user_id)
            if user is None:
                raise UsageError(f"no user {user_id}", Location(key="user"), "see the user list")
            db.execute(delete(SignedIn).where(SignedIn.user_id == user_id))
            if user.email:
                db.execute(delete(SignInLink).where(SignInLink.email == user.email))
            db.delete(user)
            self.audit_within(db, by, "account deleted", f"user {user_id}", "")
            db.commit()
        return user

    def audit(self, user_id: int | None, action: str, target: str = "", address: str = "") -> None:
        """Record what someone did (jobs, publishes, downloads, deletions)."""
        with self.session() as db:
            self.audit_within(db, user_id, action, target, address)
            db.commit()

    def audit_within(
        self, db: Session, user_id: int | None, action: str, target: str, address: str
    ) -> None:
        """Add an audit event to a transaction that is open."""
        from opensem.accounts.models import AuditEvent

        db.add(
            AuditEvent(
                user_id=user_id, action=action, target=target, address=address, at=self.clock()
            )
        )

    def audit_log(self, user_id: int | None = None) -> list[tuple[float, int | None, str, str]]:
        """(at, user, action, target), oldest first; one person's when user_id is given."""
        from sqlalchemy import select

        from opensem.accounts.models import AuditEvent

        query = select(AuditEvent.at, AuditEvent.user_id, AuditEvent.action, AuditEvent.target)
        if user_id is not None:
            query = query.where(AuditEvent.user_id == user_id)
        with self.session() as db:
            return [tuple(row) for row in db.execute(query.order_by(AuditEvent.id))]  # type: ignore[misc]


def refused(what: str = "this sign-in link") -> SignInRefused:
    """The one refusal of a sign-in, whatever went wrong."""
    return SignInRefused(
        f"{what} is not valid any more",
        Location(key="sign-in"),
        "start again from the sign-in page",
    )
