"""Names every floor agrees on: what a job id may be, and when a model name is a local path."""

from __future__ import annotations

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def is_local_model_path(base_model: str) -> bool:
    """A base model string names a local directory exactly when it is written as a path."""
    return base_model.startswith(("./", "../", "/", "~"))
