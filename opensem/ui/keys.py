"""Provider keys typed into the interface: encrypted at rest, decrypted only for the job using them.

A key never enters a manifest, a lock, the store or a log: the manifest names an environment
variable (`api_key_env`), the key is kept under build/ui/keys/ as a Fernet token made with a key
derived from the interface's secret (build/ui/secret, mode 0600), and a build job's process is
the only place it is decrypted, into that variable. A CLI build of the same manifest reads the
variable from the person's own environment, as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from opensem.errors import Location, UsageError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class KeyStore:
    """Keys of a project's experts, one file per expert."""

    def __init__(self, project_root: Path, secret: bytes) -> None:
        self.folder = project_root / "build" / "ui" / "keys"
        derived = hashlib.sha256(b"opensem provider keys\0" + secret).digest()
        self.fernet_key = base64.urlsafe_b64encode(derived)

    def _fernet(self) -> Fernet:
        from cryptography.fernet import Fernet

        return Fernet(self.fernet_key)

    def path(self, name: str) -> Path:
        """The file holding an expert's key."""
        return self.folder / f"{name}.json"

    def save(self, name: str, variable: str, key: str) -> None:
        """Keep a key for an expert's builds, readable by this user only."""
        self.folder.mkdir(parents=True, exist_ok=True)
        token = self._fernet().encrypt(key.encode()).decode()
        path = self.path(name)
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"variable": variable, "token": token}, handle)

    def environment(self, name: str) -> dict[str, str]:
        """{variable: key} for the expert's build job; empty when no key is kept."""
        from cryptography.fernet import InvalidToken

        path = self.path(name)
        if not path.is_file():
            return {}
        kept = json.loads(path.read_text())
        try:
            key = self._fernet().decrypt(kept["token"].encode()).decode()
        except InvalidToken:
            raise UsageError(
                f"the provider key kept for {name} cannot be decrypted (the interface's secret "
                "changed)",
                Location(str(path)),
                "type the key again on the new expert's page, or export the variable yourself",
            ) from None
        return {str(kept["variable"]): key}

    def forget(self, name: str) -> None:
        """Remove an expert's key."""
        self.path(name).unlink(missing_ok=True)
