"""A GitHub-shaped OAuth 2.0 server on 127.0.0.1 for tests: /login/oauth/authorize (approves at
once and sends the browser back with a code), /login/oauth/access_token (a code, used once, and
the right client secret make a token) and /user (who the token belongs to)."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


class GitHubOAuthServer:
    """Start with the context manager; url is the base of its three addresses."""

    def __init__(self, client_id: str, client_secret: str, profile: dict[str, Any]) -> None:
        self.client_id, self.client_secret, self.profile = client_id, client_secret, profile
        self.codes: dict[str, str] = {}  # code -> redirect_uri
        self.tokens: set[str] = set()
        self.token_requests = 0
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> GitHubOAuthServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                address = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(address.query).items()}
                if address.path == "/login/oauth/authorize":
                    if query.get("client_id") != server.client_id:
                        return self._json(400, {"error": "unknown client"})
                    code = secrets.token_hex(8)
                    server.codes[code] = query["redirect_uri"]
                    back = urlencode({"code": code, "state": query.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", f"{query['redirect_uri']}?{back}")
                    self.end_headers()
                elif address.path in ("/user", "/api/v3/user"):  # github.com, Enterprise
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                    if token in server.tokens:
                        return self._json(200, server.profile)
                    self._json(401, {"message": "Bad credentials"})
                else:
                    self._json(404, {"message": "Not Found"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/login/oauth/access_token":
                    return self._json(404, {"message": "Not Found"})
                server.token_requests += 1
                secret = form.get("client_secret")
                if secret is None:  # authlib sends client credentials as HTTP Basic by default
                    import base64

                    basic = self.headers.get("Authorization", "").removeprefix("Basic ")
                    secret = base64.b64decode(basic).decode().partition(":")[2] if basic else ""
                code = form.get("code", "")
                if secret != server.client_secret or code not in server.codes:
                    return self._json(400, {"error": "bad_verification_code"})
                del server.codes[code]  # once
                token = secrets.token_hex(16)
                server.tokens.add(token)
                self._json(
                    200, {"access_token": token, "token_type": "bearer", "scope": "read:user"}
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
