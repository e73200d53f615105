"""TrainParams for method tests, from flat keyword settings routed to the section that owns each."""

from __future__ import annotations

from typing import Any

from opensem.training.config import TrainParams
from tests.params import params


def train_params(method: str = "lora", seed: int = 42, **flat: Any) -> TrainParams:
    """e.g. train_params("dpo", rank=4, beta=0.2, max_steps=4, batch_size=4): each key goes to its section."""
    return params(TrainParams, type=method, seed=seed, **flat)
