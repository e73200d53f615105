"""GitHub sign-in against a GitHub-shaped OAuth server on 127.0.0.1: the flow signs in, a code
works once, and a forged callback or a wrong secret signs no one in."""

from __future__ import annotations

import pytest
import requests

from opensem.accounts.database import open_database
from opensem.accounts.github import GitHubSettings, GitHubSignIn
from opensem.accounts.service import Accounts, SignInRefused
from tests.servers.github_oauth import GitHubOAuthServer

REDIRECT = "http://127.0.0.1:8000/sign-in/github"


def _settings(server: GitHubOAuthServer) -> GitHubSettings:
    return GitHubSettings(
        client_id="opensem-test",
        client_secret_env="TEST_GITHUB_SECRET",
        authorize_url=server.url + "/login/oauth/authorize",
        token_url=server.url + "/login/oauth/access_token",
        api_url=server.url,
    )


def _approve(url: str) -> str:
    """What the browser does at GitHub: it comes back to the callback with a code."""
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return str(answer.headers["Location"])


def test_github_signs_in_by_its_id_and_a_code_works_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_GITHUB_SECRET", "s3cret")
    accounts = Accounts(open_database(database_url))
    profile = {"id": 4242, "login": "octo", "email": "someone.else@example.org"}
    with GitHubOAuthServer("opensem-test", "s3cret", profile) as server:
        github = GitHubSignIn(_settings(server), accounts)
        url, state = github.start(REDIRECT)
        assert url.startswith(server.url) and f"state={state}" in url
        callback = _approve(url)
        user, session = github.finish(callback, state, REDIRECT, "10.0.0.3")
        assert (user.github_id, user.name, user.email) == ("4242", "octo", None)
        signed = accounts.user(session)
        assert signed is not None and signed.id == user.id
        with pytest.raises(SignInRefused):
            github.finish(callback, state, REDIRECT, "10.0.0.3")  # the code is used up
        url, state = github.start(REDIRECT)
        again, _ = github.finish(_approve(url), state, REDIRECT, "x")
        assert again.id == user.id  # the same person, by GitHub's id


def test_a_forged_callback_or_a_wrong_secret_signs_no_one_in(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = Accounts(open_database(database_url))
    with GitHubOAuthServer("opensem-test", "s3cret", {"id": 7, "login": "eve"}) as server:
        github = GitHubSignIn(_settings(server), accounts)
        url, state = github.start(REDIRECT)
        callback = _approve(url)
        with pytest.raises(SignInRefused):
            github.finish(callback, "another-state", REDIRECT, "x")
        assert server.token_requests == 0  # refused before asking GitHub
        monkeypatch.setenv("TEST_GITHUB_SECRET", "wrong")
        with pytest.raises(SignInRefused) as refused:
            github.finish(callback, state, REDIRECT, "x")
        assert "Traceback" not in refused.value.message and accounts.users() == []
