"""Lot numbers: the sha256 of what ran, with which settings, on which bytes.

A lot number is the sha256 of the canonical JSON of {stage kind, code version, params, inputs},
where inputs maps each input slot to a digest (a source's, or an upstream stage's output).
"""

from __future__ import annotations

from typing import Any

from opensem.core.digests import canonical_json, sha256_text

LOCK_FORMAT = 2  # of the lock file (opensem.core.lock); 2: params nested by manifest section


def lot_number(stage: str, version: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """The lot number of one stage run: what ran, with which settings, on which bytes."""
    return sha256_text(
        canonical_json({"stage": stage, "version": version, "params": params, "inputs": inputs})
    )


def flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as {dotted key: leaf value}, so a change can be named by its manifest key."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_params(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def changed_params(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every leaf that differs, sorted by key."""
    before, after = flat_params(old), flat_params(new)
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
