"""What keeps the browser interface safe on one machine: CSRF tokens, upload names and sizes.

Every state-changing request carries a token that only pages of this interface can know: an
HMAC of the session cookie under a secret kept in build/ui/secret (made once, mode 0600), sent
as the form field `csrf` or the header `X-CSRF-Token`. Uploaded files keep a sanitised base name,
one of the document types ingest reads, a size limit, and a path checked to stay inside the
folder they are written to.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

from opensem.errors import Location, UsageError

SESSION_COOKIE = "opensem_session"
DOCUMENT_TYPES = (".pdf", ".txt", ".md")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # per file
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def project_secret(project_root: Path) -> bytes:
    """The interface's signing secret for this project, made on first use."""
    path = project_root / "build" / "ui" / "secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def new_session() -> str:
    """A random session id for the cookie."""
    return secrets.token_urlsafe(24)


def csrf_token(secret: bytes, session: str) -> str:
    """The CSRF token of a session."""
    return hmac.new(secret, session.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, session: str | None, token: str | None) -> bool:
    """Whether a request's token belongs to its session."""
    if not session or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, session), token)


def safe_name(filename: str) -> str:
    """A file name with no folders, no hidden dot and only safe characters; UsageError when
    nothing usable or no document type is left."""
    base = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    base = UNSAFE.sub("-", base.replace("\\", "/").rsplit("/", 1)[-1]).strip(".-_")
    suffix = Path(base).suffix.lower()
    if not base or suffix not in DOCUMENT_TYPES:
        raise UsageError(
            f"{filename!r} is not a document this expert can read",
            Location(key="documents"),
            hint=f"upload {', '.join(DOCUMENT_TYPES)} files",
        )
    return base[: 120 - len(suffix)].rstrip(".-_") + suffix if len(base) > 120 else base


def inside(folder: Path, name: str) -> Path:
    """folder/name, refused when it would resolve outside folder (a link, '..')."""
    target = (folder / name).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise UsageError(
            f"{name!r} would be written outside {folder.name}/", hint="rename the file"
        )
    return target
