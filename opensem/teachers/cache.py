"""The teacher response cache: one file per paid answer, shared by every lot and manifest.

Keyed by the sha256 of (provider, model, base_url, messages, parameters), so the same question
to the same teacher is paid once, whichever build asks it. Each answer is written to a temporary
file and renamed into place the moment it arrives: a killed build keeps everything it paid for,
and a half-written entry can never be read. An entry that does not parse is dropped, not trusted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opensem.core.digests import canonical_json, sha256_text
from opensem.core.files import write_atomic

CACHE_VERSION = 1


def answer_key(
    provider: str,
    model: str,
    base_url: str | None,
    messages: Sequence[Mapping[str, str]],
    parameters: Mapping[str, Any],
) -> str:
    """The digest an answer is filed under. The API key is not part of it, and never stored."""
    payload = {
        "v": CACHE_VERSION,
        "provider": provider,
        "model": model,
        "base_url": (base_url or "").rstrip("/"),
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "parameters": dict(parameters),
    }
    return sha256_text(canonical_json(payload))


class TeacherCache:
    """Answers under root/<key[:2]>/<key>.json; root is <cache_dir>/teacher."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer ({"text", "input_tokens", "output_tokens"}), or None."""
        path = self._file(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # corrupt: drop it and ask again
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            path.unlink(missing_ok=True)
            return None
        return entry

    def put(self, key: str, text: str, input_tokens: int, output_tokens: int) -> None:
        """File one answer atomically (temporary file, fsync, rename)."""
        entry = {"text": text, "input_tokens": input_tokens, "output_tokens": output_tokens}
        write_atomic(
            self._file(key), json.dumps(entry, sort_keys=True, ensure_ascii=False), fsync=True
        )

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.exists() else 0
