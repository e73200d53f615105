"""Checkpoints a killed run leaves behind, and which one to resume from."""

from __future__ import annotations

import re
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest complete checkpoint a killed run left behind; one cut off while saving is skipped.

    The trainer writes trainer_state.json last, so a checkpoint without it was interrupted.
    """
    if not output_dir.is_dir():
        return None
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if (m := _CHECKPOINT.match(p.name)) and p.is_dir()
    ]
    complete = [(step, path) for step, path in found if (path / "trainer_state.json").is_file()]
    return str(max(complete)[1]) if complete else None


def checkpoint_step(checkpoint: str | None) -> int:
    """The optimizer step a checkpoint was taken at (0 for none)."""
    match = _CHECKPOINT.match(Path(checkpoint).name) if checkpoint else None
    return int(match.group(1)) if match else 0
