"""API keys in SQLite and PostgreSQL: shown once and kept as a digest, revoked only by their
owner, refused for a disabled person, and gone with their owner's account (with their jobs)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from opensem.accounts.api_keys import PREFIX, ApiKeys
from opensem.accounts.database import open_database
from opensem.accounts.models import ApiKey, JobRow
from opensem.accounts.service import Accounts
from opensem.ui.jobs import JobQueue


def test_a_key_names_its_owner_until_revoked_disabled_or_deleted(
    database_url: str, tmp_path: Path
) -> None:
    accounts = Accounts(open_database(database_url))
    ana, _ = accounts.sign_in(accounts.request_link("ana@example.org", "a"), "a")
    bo, _ = accounts.sign_in(accounts.request_link("bo@example.org", "b"), "b")
    keys = ApiKeys(accounts)
    key = keys.make(ana.id, "  my   laptop ")
    assert key.startswith(PREFIX) and len(key) >= 40
    (listed,) = keys.of(ana.id)
    assert listed.label == "my laptop" and key.startswith(listed.shown) and listed.shown != key
    with accounts.session() as db:
        assert db.scalar(select(func.count()).where(ApiKey.digest == key)) == 0  # only its digest
    owner = keys.owner(key)
    assert owner is not None and owner.id == ana.id
    assert keys.owner(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert keys.owner("not-a-key") is None and keys.of(bo.id) == []

    assert not keys.revoke(bo.id, listed.number)  # not Bo's
    accounts.set_disabled(ana.id, True)
    assert keys.owner(key) is None
    accounts.set_disabled(ana.id, False)
    assert keys.owner(key) is not None
    assert keys.revoke(ana.id, listed.number) and keys.owner(key) is None and keys.of(ana.id) == []

    kept = keys.make(ana.id, "second")
    JobQueue(tmp_path, database=accounts.engine, owner=ana.id).submit("manifests/coffee.yaml")
    accounts.delete_user(ana.id)
    assert keys.owner(kept) is None
    with accounts.session() as db:
        assert db.scalar(select(func.count()).select_from(ApiKey)) == 0
        assert db.scalar(select(func.count()).select_from(JobRow)) == 0
    actions = [action for _, _, action, _ in accounts.audit_log()]
    assert actions.count("api key made") == 2 and "api key revoked" in actions
