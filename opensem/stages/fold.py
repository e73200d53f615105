"""Stage kind fold: the trained (or merged) adapter folded into its base, as one plain model.

The output's model/ loads with AutoModelForCausalLM alone and gives the logits of base + adapter;
it provides the `model` channel, which quantization reads, and is published under folded/.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from opensem.release.fold import FoldDtype
from opensem.settings.fields import Section
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import (
    MODEL_LIBRARIES,
    ReleasePart,
    StageContext,
    StageResult,
    folder_files,
)
from opensem.stages.wiring import Wiring


class FoldConfig(Section):
    dtype: FoldDtype = Field(
        "auto", description="dtype of the folded weights; auto: the base checkpoint's."
    )


class FoldParams(FoldConfig):
    base_model: str | None = None  # a hub id, used only without a 'base' input


@register
class Fold:
    name = "fold"
    libraries = MODEL_LIBRARIES
    heavy = True  # loads a model: one at a time under build -j
    version = "1"
    Params = FoldParams
    sections = (
        section(
            "fold",
            FoldConfig | None,
            None,
            description="Also ship the adapter folded into its base, as one plain model; omit for none.",
        ),
    )
    release_slot = "folded"

    def release(self, out_dir: Path, slot: str) -> ReleasePart:
        """The folded model, under folded/."""
        return ReleasePart(folder_files(out_dir / "model", "folded/"), {"folded": True})

    def wire(self, wiring: Wiring) -> None:
        """The fold stage, when the manifest asks for it."""
        config = wiring.section("fold")
        if config is not None:
            params = FoldParams(**config.model_dump(), base_model=wiring.hub_model)
            if wiring.add(
                self,
                params,
                {"trained": wiring.channel("adapter"), **wiring.base_inputs()},
                provides=("model",),
            ) is None and wiring.has_failed("adapter"):
                wiring.fail("model")

    def run(
        self, params: FoldParams, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Fold the adapter into its base and write the plain model."""
        from opensem.release.fold import fold
        from opensem.training.methods.base import resolve_base_model

        details = fold(
            resolve_base_model(inputs, params.base_model, self.name),
            Path(inputs["trained"]),
            out_dir / "model",
            params.dtype,
        )
        what = "folded into the base" if details["folded"] else "already a whole model: copied"
        return StageResult(summary=f"{what}, {details['dtype']}", metrics=details)
