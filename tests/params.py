"""Stage params for tests, from flat keyword settings: each key goes to the section that has it.

params(TrainParams, type="dpo", rank=4, max_steps=4, seed=7)  ->  method_config.rank, training.max_steps, ...
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from opensem.settings.fields import union_members

M = TypeVar("M", bound=BaseModel)


def params(model: type[M], **flat: Any) -> M:
    values: dict[str, Any] = {}
    for key, value in flat.items():
        if key in model.model_fields:
            values[key] = value
            continue
        owner = next(
            (
                name
                for name, field in model.model_fields.items()
                if any(key in m.model_fields for m in union_members(field))
            ),
            None,
        )
        if owner is None:
            raise KeyError(f"{model.__name__} has no setting {key!r} at any depth")
        values.setdefault(owner, {})[key] = value
    return model.model_validate(values)
