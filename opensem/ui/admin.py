"""The admin page of `opensem ui --accounts`: everyone, and disabling, enabling and deleting them.

Only people `opensem accounts admin` named reach it; to anyone else it answers 404 like any page
that does not exist. Deleting someone stops their interface, removes their account and sessions,
and removes their whole folder (documents, data, feedback, store, releases, keys), then says what
went.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opensem.accounts.budgets import parse_usd
from opensem.accounts.homes import remove_person

if TYPE_CHECKING:
    from opensem.ui.gate import Gate


def admin_app(gate: Gate) -> FastAPI:
    """The admin pages, in the gate's shell (session cookie, CSRF, error pages)."""
    from opensem.ui.app import require_csrf, shell

    app = shell(gate.settings.base, gate.secret, label="admin")
    page = app.state.page
    accounts = gate.accounts

    def listing(request: Request, done: str = "") -> HTMLResponse:
        people = accounts.users()
        context = {
            "people": people,
            "done": done,
            "me": request.state.user_id,
            "default_budget": gate.settings.monthly_budget_usd,
        }
        rendered: HTMLResponse = page(request, "admin.html", context)
        return rendered

    @app.get("/admin", response_class=HTMLResponse)
    async def everyone(request: Request) -> HTMLResponse:
        return await asyncio.to_thread(listing, request)

    @app.post("/admin/users/{user_id}/budget", response_model=None)
    async def budget(request: Request, user_id: int) -> Response:
        """A person's own monthly budget for provider jobs (empty: the interface's default)."""
        await require_csrf(request)
        if all(p.id != user_id for p in accounts.users()):
            return page(request, "error.html", {"message": "there is no such page"}, status=404)
        usd = parse_usd(str((await request.form()).get("usd") or ""), "usd")
        await asyncio.to_thread(gate.budgets.set_limit, user_id, usd, request.state.user_id)
        return RedirectResponse("/admin", status_code=303)

    @app.post("/admin/users/{user_id}/{action}", response_model=None)
    async def act(request: Request, user_id: int, action: str) -> Response:
        await require_csrf(request)
        me = int(request.state.user_id)
        person = next((p for p in accounts.users() if p.id == user_id), None)
        if person is None or action not in ("disable", "enable", "delete") or user_id == me:
            return page(request, "error.html", {"message": "there is no such page"}, status=404)
        name = person.email or person.name
        if action != "delete":
            await asyncio.to_thread(accounts.set_disabled, user_id, action == "disable", me)
            if action == "disable":
                await asyncio.to_thread(gate.forget, user_id)
            return RedirectResponse("/admin", status_code=303)
        await asyncio.to_thread(gate.forget, user_id)
        files, size = await asyncio.to_thread(
            remove_person, accounts, gate.settings.base, person, me
        )
        done = f"{name} is deleted: the account, its sessions, API keys and jobs, {files} files ({size / 1e6:.1f} MB)"
        return await asyncio.to_thread(listing, request, done)

    return app
