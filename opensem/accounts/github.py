"""Signing in with GitHub: the OAuth 2.0 web flow through authlib.

start() gives the address to send the browser to and a state to keep in the browser's cookie;
GitHub sends the browser back with a code, and finish() checks the state (a forged callback is
refused before any request), trades the code for a token, reads who the person is, and signs
them in. A GitHub account is matched by its numeric id only: an email GitHub reports is never
used to reach an existing account, so no one takes over an account by naming its email.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pydantic import Field

from opensem.settings.fields import Section

if TYPE_CHECKING:
    from opensem.accounts.models import User
    from opensem.accounts.service import Accounts


class GitHubSettings(Section):
    """The OAuth app GitHub sign-in uses (its addresses are GitHub's unless a test says otherwise)."""

    client_id: str = Field(min_length=1, description="The OAuth app's client id.")
    client_secret_env: str = Field(
        "OPENSEM_GITHUB_SECRET",
        min_length=1,
        description="Environment variable holding the OAuth app's client secret (never the secret).",
    )
    authorize_url: str = Field(
        "https://github.com/login/oauth/authorize", description="Where the browser is sent."
    )
    token_url: str = Field(
        "https://github.com/login/oauth/access_token", description="Where a code becomes a token."
    )
    api_url: str = Field("https://api.github.com", description="GitHub's API, for /user.")
    timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for GitHub.")


def enterprise(client_id: str, url: str) -> GitHubSettings:
    """The settings for a GitHub Enterprise Server at url (its API under /api/v3)."""
    base = url.rstrip("/")
    return GitHubSettings(
        client_id=client_id,
        authorize_url=f"{base}/login/oauth/authorize",
        token_url=f"{base}/login/oauth/access_token",
        api_url=f"{base}/api/v3",
    )


class GitHubSignIn:
    """The two halves of the flow, for one OAuth app."""

    def __init__(self, settings: GitHubSettings, accounts: Accounts) -> None:
        self.settings, self.accounts = settings, accounts

    def start(self, redirect_uri: str) -> tuple[str, str]:
        """(the address to send the browser to, the state to remember for the callback)."""
        from authlib.integrations.requests_client import OAuth2Session

        client = OAuth2Session(
            self.settings.client_id, redirect_uri=redirect_uri, scope="read:user"
        )
        url, state = client.create_authorization_url(self.settings.authorize_url)
        return str(url), str(state)

    def finish(
        self, callback_url: str, state: str, redirect_uri: str, address: str
    ) -> tuple[User, str]:
        """(the person, a new session token) for GitHub's callback; SignInRefused otherwise."""
        import requests
        from authlib.common.errors import AuthlibBaseError
        from authlib.integrations.requests_client import OAuth2Session

        from opensem.accounts.service import refused

        secret = os.environ.get(self.settings.client_secret_env, "")
        client = OAuth2Session(
            self.settings.client_id, secret, redirect_uri=redirect_uri, state=state
        )
        try:
            client.fetch_token(
                self.settings.token_url,
                authorization_response=callback_url,
                timeout=self.settings.timeout_s,
            )
            answer = client.get(
                self.settings.api_url.rstrip("/") + "/user", timeout=self.settings.timeout_s
            )
            answer.raise_for_status()
            profile = answer.json()
            github_id, login = str(profile["id"]), str(profile.get("login") or "")
        except (AuthlibBaseError, requests.RequestException, ValueError, KeyError):
            raise refused("this GitHub sign-in") from None
        return self.accounts.sign_in_external(github_id, login, address)
