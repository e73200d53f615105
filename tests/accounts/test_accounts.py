"""Accounts in SQLite and in PostgreSQL: the migrations make the models' tables, an emailed link
signs in once, sign-in requests are rate-limited, and sessions end when they should."""

from __future__ import annotations

import re
from email import message_from_string

import pytest

from opensem.accounts.database import open_database
from opensem.accounts.mail import MailSettings, send_sign_in_link
from opensem.accounts.models import Base
from opensem.accounts.service import Accounts, Limits, RateLimited, SignInRefused
from tests.accounts.conftest import Inbox


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_migrations_make_exactly_the_models_tables(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = open_database(database_url)
    open_database(database_url)  # again: nothing left to do
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_an_emailed_link_signs_in_once_and_not_after_it_expires(
    database_url: str, smtp: Inbox
) -> None:
    clock = Clock()
    accounts = Accounts(open_database(database_url), clock=clock)
    token = accounts.request_link(" Ana@Example.org ", "10.0.0.1")
    send_sign_in_link(
        MailSettings(port=smtp.port), "ana@example.org", f"http://ui/sign-in?token={token}", 15
    )
    mail = message_from_string(smtp.messages[0])
    assert mail["To"] == "ana@example.org"
    sent = re.search(r"token=(\S+)", str(mail.get_payload()))
    assert sent is not None and sent.group(1) == token

    user, session = accounts.sign_in(sent.group(1), "10.0.0.1")
    assert user.email == "ana@example.org" and len(user.folder) == 32
    signed = accounts.user(session)
    assert signed is not None and signed.id == user.id
    with pytest.raises(SignInRefused) as used:
        accounts.sign_in(token, "10.0.0.1")
    late = accounts.request_link("ana@example.org", "10.0.0.1")
    clock.now += Limits().link_s + 1
    with pytest.raises(SignInRefused) as expired:
        accounts.sign_in(late, "10.0.0.1")
    with pytest.raises(SignInRefused) as unknown:
        accounts.sign_in("made-up", "10.0.0.1")
    assert used.value.message == expired.value.message == unknown.value.message  # says nothing more
    assert accounts.user(session) is not None  # the session lasts longer than a link
    clock.now += Limits().session_s
    assert accounts.user(session) is None


def test_sign_in_requests_are_limited_per_email_and_per_address(database_url: str) -> None:
    clock = Clock()
    accounts = Accounts(open_database(database_url), Limits(per_email=3, per_address=5), clock)
    for _ in range(3):
        accounts.request_link("bo@example.org", "10.0.0.2")
    with pytest.raises(RateLimited) as limited:
        accounts.request_link("bo@example.org", "10.0.0.9")
    assert "wait 15 minutes" in limited.value.hint
    accounts.request_link("cy@example.org", "10.0.0.2")
    accounts.request_link("dee@example.org", "10.0.0.2")
    with pytest.raises(RateLimited):
        accounts.request_link("eve@example.org", "10.0.0.2")  # the address asked 5 times
    clock.now += Limits().window_s + 1
    accounts.request_link("bo@example.org", "10.0.0.2")


def test_sign_out_everywhere_disabling_and_deleting(database_url: str) -> None:
    accounts = Accounts(open_database(database_url), Limits(per_email=10))
    user, first = accounts.sign_in(accounts.request_link("fay@example.org", "a"), "a")
    _, second = accounts.sign_in(accounts.request_link("fay@example.org", "b"), "b")
    assert accounts.sign_out_everywhere(user.id) == 2
    assert accounts.user(first) is None and accounts.user(second) is None
    _, third = accounts.sign_in(accounts.request_link("fay@example.org", "a"), "a")
    accounts.set_disabled(user.id, True)
    assert accounts.user(third) is None
    with pytest.raises(SignInRefused):
        accounts.sign_in(accounts.request_link("fay@example.org", "a"), "a")
    gone = accounts.delete_user(user.id)
    assert gone.email == "fay@example.org" and accounts.users() == []
    actions = [action for _, _, action, _ in accounts.audit_log()]
    assert actions[:3] == ["sign-in link sent", "account made", "sign-in"]
    assert {"signed out everywhere", "disabled", "account deleted"} <= set(actions)
