"""The options a training method declares: the shapes shared by families of methods.

`method_config` in a manifest is one method's options, chosen by `type` (a union built from the
method registry, opensem.training.methods.method_config_union). A method file declares its own
Options class, usually a subclass of one below with its `type` literal, and nothing else has to
change for its settings to appear in the schema, the README reference and validation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opensem.settings.fields import Section, run_setting, unset_keeps_lots

DEFAULT_METHOD = "lora"
# Every linear layer but the output head (q, k, v, o, gate, up and down projections on Llama).
ALL_LINEAR = "all-linear"


class MethodOptions(Section):
    """What every method takes."""

    type: str
    strict_hardware_check: bool = run_setting(
        True,
        description="Fail before training when the hardware cannot run it; false: warn and try.",
    )


class AdapterOptions(MethodOptions):
    """Methods that train a LoRA-style adapter and leave the base weights frozen."""

    rank: int = Field(16, gt=0, le=1024, description="Adapter rank (r).")
    alpha: int | None = Field(
        None, gt=0, description="Adapter scaling alpha; defaults to 2 x rank."
    )
    dropout: float = Field(0.05, ge=0, lt=1, description="Adapter dropout.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        ALL_LINEAR,  # type: ignore[arg-type]  # pydantic's stub narrows a literal default to str
        min_length=1,
        description="Modules to adapt; all-linear means q, k, v, o, gate, up and down projections.",
    )
    last_layers: int | None = unset_keeps_lots(
        gt=0,
        description=(
            "Adapt only the last N transformer blocks: the backward pass stops there, so a step "
            "costs less (about 30% on a CPU with 8 of 30 blocks); unset: every block."
        ),
    )

    @property
    def lora_alpha(self) -> int:
        """The scaling alpha: as set, else twice the rank."""
        return self.alpha if self.alpha is not None else 2 * self.rank


class PreferenceOptions(AdapterOptions):
    """Methods that learn from preferences or feedback against the frozen base as reference."""

    beta: float = Field(
        0.1,
        gt=0,
        description="Preference strength (trl's beta): how far the tuned model may move from the reference.",
    )
