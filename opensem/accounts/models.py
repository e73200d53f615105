"""The tables. Times are UNIX seconds (float), the same in SQLite and PostgreSQL; secrets (link
and session tokens) are kept only as their SHA-256, so a copy of the database signs no one in."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The accounts schema (alembic's migrations must produce exactly this)."""


class User(Base):
    """A person: signed in by email link or GitHub; their projects live under their folder."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    github_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    folder: Mapped[str] = mapped_column(String(64), unique=True)  # random: no guessable paths
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[float] = mapped_column(Float)
    # What provider jobs may cost a month (USD); None: no limit of their own (the default's)
    monthly_budget_usd: Mapped[float | None] = mapped_column(Float, nullable=True)


class SignInLink(Base):
    """An emailed one-time link, by the digest of its token."""

    __tablename__ = "sign_in_links"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    expires: Mapped[float] = mapped_column(Float)
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class SignedIn(Base):
    """A session (the browser's cookie holds the token, the table its digest)."""

    __tablename__ = "sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[float] = mapped_column(Float)
    expires: Mapped[float] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Attempt(Base):
    """A sign-in attempt, counted by key (an email or an address) for the rate limit."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), index=True)
    at: Mapped[float] = mapped_column(Float, index=True)


class AuditEvent(Base):
    """Who did what, when, from where: sign-ins, jobs, publishes, downloads, deletions."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)  # kept after a deletion
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[float] = mapped_column(Float, index=True)


class ApiKey(Base):
    """A key a person made for `opensem serve --accounts`; it reaches only their releases."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("user_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)  # its id as its owner sees it (1, 2, ...)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    shown: Mapped[str] = mapped_column(String(16))  # its first characters, to tell keys apart
    created: Mapped[float] = mapped_column(Float)
    last_used: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class JobRow(Base):
    """A build job of the interface's queue: whose, which manifest, how it went, what it may cost."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("user_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=True
    )  # None: the interface without accounts
    # The job's id as its owner sees it (1, 2, ...): no one learns how many jobs others made
    number: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created: Mapped[float] = mapped_column(Float)
    started: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished: Mapped[float | None] = mapped_column(Float, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    until: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The provider cost the person confirmed (an upper bound), counted against their budget
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
