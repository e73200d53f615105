"""Accounts: who is asking, in a real database (SQLite by default, PostgreSQL by URL).

- models.py: the tables (people, sign-in links, sessions, sign-in attempts, the audit log).
- database.py: an engine for a URL, its schema brought to the newest migration (alembic).
- service.py: signing in by an emailed one-time link, sessions, rate limits, sign-out
  everywhere, disabling and deleting people, and the audit log.
- mail.py: the sign-in email, sent through the SMTP server the settings name.
- github.py: signing in with GitHub (OAuth 2.0 through authlib), matched by GitHub's id.
"""
