"""Accounts in front of the interface: every person gets an interface of their own.

With `opensem ui --accounts`, every request meets the gate first. The sign-in pages (an emailed
one-time link, or GitHub when configured) are all a stranger can reach. A signed-in person's
requests go to an interface made for them over their own root, PROJECT/users/<random folder>/,
with its own manifests, data, store, jobs, keys and served releases. Another person's experts,
jobs and releases are not in that interface at all, so every route answers 404 for them:
isolation by construction, not by a check each route must remember.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opensem.accounts.api_keys import ApiKeys
from opensem.accounts.budgets import Budgets
from opensem.accounts.github import GitHubSettings, GitHubSignIn
from opensem.accounts.homes import home
from opensem.accounts.mail import MailSettings, send_sign_in_link
from opensem.accounts.models import User
from opensem.accounts.service import Accounts, RateLimited, SignInRefused
from opensem.errors import OpensemError
from opensem.ui import security
from opensem.ui.account import account_app
from opensem.ui.admin import admin_app
from opensem.ui.tenant import Tenant

ACCOUNT_COOKIE = "opensem_account"
OPEN = ("/sign-in", "/sign-out", "/static/")


@dataclass(frozen=True)
class GateSettings:
    """Where people and their projects live, and how they sign in."""

    base: Path  # the folder that holds users/<folder>/ and the gate's own secret
    database_url: str
    mail: MailSettings
    public_url: str  # what links in emails point at
    github: GitHubSettings | None = None
    workers: int = 1
    monthly_budget_usd: float | None = None  # provider jobs, per person, unless set otherwise


class Gate:
    """The ASGI app `opensem ui --accounts` serves."""

    def __init__(self, settings: GateSettings, accounts: Accounts) -> None:
        self.settings, self.accounts = settings, accounts
        self.secret = security.project_secret(settings.base)
        self.api_keys = ApiKeys(accounts)
        self.budgets = Budgets(accounts, settings.monthly_budget_usd)
        self.apps: dict[int, FastAPI] = {}
        self.public = self._public_app()
        self.admin = admin_app(self)
        self.account = account_app(self)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Sign-in pages for anyone; everything else for a signed-in person, in their own app."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(OPEN) or path == "/favicon.ico":
            await self.public(scope, receive, send)
            return
        token = _cookie(scope, ACCOUNT_COOKIE)
        user = await asyncio.to_thread(self.accounts.user, token) if token else None
        if user is None:
            await RedirectResponse("/sign-in", status_code=303)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["account"] = user.email or user.name
        state["sign_out"] = security.csrf_token(self.secret, token or "")
        state["user_id"] = user.id
        if user.is_admin and (path == "/admin" or path.startswith("/admin/")):
            await self.admin(scope, receive, send)
            return
        if path == "/account" or path.startswith("/account/"):
            await self.account(scope, receive, send)
            return
        # Anyone else's interface has no /admin: the same 404 page as any other missing page
        await self._app_of(user)(scope, receive, send)

    def root_of(self, user: User) -> Path:
        """A person's own project folder."""
        return home(self.settings.base, user)

    def _app_of(self, user: User) -> FastAPI:
        from opensem.ui.app import create_app

        app = self.apps.get(user.id)
        if app is None:
            root = self.root_of(user)
            (root / "manifests").mkdir(parents=True, exist_ok=True)
            tenant = Tenant(user.id, user.email or user.name, self.accounts, self.budgets)
            app = create_app(root, self.settings.workers, tenant)
            app.state.jobs.start()  # the gate's lifespan stops it
            self.apps[user.id] = app
        return app

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(self.resume)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for app in self.apps.values():
                    await asyncio.to_thread(app.state.served.stop_all)
                    await asyncio.to_thread(app.state.jobs.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def resume(self) -> None:
        """Give back their interface (and its workers) to people whose builds were queued or
        running when the interface stopped: their builds go on before they come back."""
        from sqlalchemy import select

        from opensem.accounts.models import JobRow, User
        from opensem.ui.job_table import ACTIVE

        waiting = select(JobRow.user_id).where(JobRow.state.in_(ACTIVE))
        with self.accounts.session() as db:
            people = list(
                db.scalars(select(User).where(User.id.in_(waiting), User.disabled.is_(False)))
            )
        for user in people:
            self._app_of(user)

    def forget(self, user_id: int) -> None:
        """Stop a person's interface (they were disabled or deleted)."""
        app = self.apps.pop(user_id, None)
        if app is not None:
            app.state.served.stop_all()
            app.state.jobs.stop()

    def _public_app(self) -> FastAPI:
        from opensem.ui.app import require_csrf, shell

        app = shell(self.settings.base, self.secret, label="sign in")
        page = app.state.page
        github = GitHubSignIn(self.settings.github, self.accounts) if self.settings.github else None
        link_minutes = round(self.accounts.limits.link_s / 60)

        @app.get("/sign-in", response_class=HTMLResponse)
        async def sign_in_page(request: Request) -> HTMLResponse:
            return page(request, "sign_in.html", {"github": github is not None, "sent": ""})

        @app.post("/sign-in", response_class=HTMLResponse)
        async def ask_for_link(request: Request) -> HTMLResponse:
            await require_csrf(request)
            email = str((await request.form()).get("email") or "")
            address = request.client.host if request.client else ""
            try:
                token = await asyncio.to_thread(self.accounts.request_link, email, address)
            except RateLimited as error:
                context = {"github": github is not None, "sent": "", "problem": error.render()}
                return page(request, "sign_in.html", context, status=429)
            link = f"{self.settings.public_url.rstrip('/')}/sign-in/link?token={token}"
            mail, to = self.settings.mail, email.strip().lower()
            await asyncio.to_thread(send_sign_in_link, mail, to, link, link_minutes)
            return page(request, "sign_in.html", {"github": github is not None, "sent": to})

        @app.get("/sign-in/link", response_model=None)
        async def follow_link(request: Request, token: str = "") -> Response:
            address = request.client.host if request.client else ""
            try:
                _, session = await asyncio.to_thread(self.accounts.sign_in, token, address)
            except SignInRefused as error:
                return page(request, "error.html", _problem(error), status=400)
            return self._signed_in(request, session)

        @app.get("/sign-in/github", response_model=None)
        async def to_github(request: Request, code: str = "", state: str = "") -> Response:
            if github is None:
                return page(request, "error.html", {"message": "there is no such page"}, 404)
            redirect = f"{self.settings.public_url.rstrip('/')}/sign-in/github"
            if not code:
                url, expected = github.start(redirect)
                response = RedirectResponse(url, status_code=303)
                secure = self.settings.public_url.startswith("https://")
                response.set_cookie(
                    "opensem_oauth", expected, httponly=True, samesite="lax", secure=secure
                )
                return response
            expected = request.cookies.get("opensem_oauth", "")
            address = request.client.host if request.client else ""
            try:
                _, session = await asyncio.to_thread(
                    github.finish, str(request.url), expected, redirect, address
                )
            except SignInRefused as error:
                return page(request, "error.html", _problem(error), status=400)
            return self._signed_in(request, session)

        @app.post("/sign-out", response_model=None)
        async def sign_out(request: Request) -> Response:
            token = request.cookies.get(ACCOUNT_COOKIE, "")
            form = await request.form()
            if not token or not security.csrf_valid(self.secret, token, str(form.get("csrf"))):
                return page(request, "error.html", {"message": "this form has expired"}, 403)
            user = await asyncio.to_thread(self.accounts.user, token)
            if user is not None and form.get("everywhere") == "on":
                await asyncio.to_thread(self.accounts.sign_out_everywhere, user.id)
            elif user is not None:
                await asyncio.to_thread(self.accounts.sign_out, token)
            response = RedirectResponse("/sign-in", status_code=303)
            response.delete_cookie(ACCOUNT_COOKIE)
            return response

        return app

    def _signed_in(self, request: Request, session: str) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            ACCOUNT_COOKIE,
            session,
            max_age=int(self.accounts.limits.session_s),
            httponly=True,
            samesite="lax",  # the email's link and GitHub's redirect are top-level navigations
            secure=self.settings.public_url.startswith("https://"),
        )
        return response


def _cookie(scope: dict[str, Any], name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            jar.load(value.decode("latin-1"))
            if name in jar:
                return jar[name].value
    return None


def _problem(error: OpensemError) -> dict[str, str]:
    return {"message": error.message, "hint": error.hint}
