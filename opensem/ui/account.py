"""A signed-in person's own page under `opensem ui --accounts`: the API keys their programs use
with `opensem serve --accounts`, what provider jobs may still cost them this month, and what the
audit log holds of them.

A new key is shown once, on the page that made it; the list shows only its first characters.
Revoking a key of someone else's is the same 404 as a key that does not exist.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from opensem.ui.gate import Gate

AUDIT_SHOWN = 50  # the person's latest audit events on the page


def account_app(gate: Gate) -> FastAPI:
    """The /account pages, in the gate's shell (session cookie, CSRF, error pages)."""
    from opensem.ui.app import require_csrf, shell

    app = shell(gate.settings.base, gate.secret, label="your account")
    page = app.state.page

    def context(user_id: int, made: str = "") -> dict[str, Any]:
        events = gate.accounts.audit_log(user_id)[-AUDIT_SHOWN:]
        return {
            "keys": gate.api_keys.of(user_id),
            "made": made,
            "allowance": gate.budgets.allowance(user_id),
            "events": list(reversed(events)),
        }

    @app.get("/account", response_class=HTMLResponse)
    async def account(request: Request) -> HTMLResponse:
        found = await asyncio.to_thread(context, request.state.user_id)
        rendered: HTMLResponse = page(request, "account.html", found)
        return rendered

    @app.post("/account/api-keys", response_class=HTMLResponse)
    async def make_key(request: Request) -> HTMLResponse:
        await require_csrf(request)
        label = str((await request.form()).get("label") or "")
        address = request.client.host if request.client else ""
        user_id = request.state.user_id
        key = await asyncio.to_thread(gate.api_keys.make, user_id, label, address)
        rendered: HTMLResponse = page(
            request, "account.html", await asyncio.to_thread(context, user_id, key)
        )
        rendered.headers["Cache-Control"] = "no-store"  # the key is on this page only
        return rendered

    @app.post("/account/api-keys/{number}/revoke", response_model=None)
    async def revoke(request: Request, number: int) -> Response:
        await require_csrf(request)
        address = request.client.host if request.client else ""
        if not await asyncio.to_thread(
            gate.api_keys.revoke, request.state.user_id, number, address
        ):
            return page(request, "error.html", {"message": "there is no such page"}, status=404)
        return RedirectResponse("/account", status_code=303)

    return app
