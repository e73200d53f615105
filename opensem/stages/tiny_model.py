"""Stage kind tiny_model: a small random Llama with a locally trained tokenizer, built offline.

It stands in for a hub base model in tests, demos and CI, through the same "base" channel the
train and evaluate stages read a real base model from. Its params are the manifest's
`base_model.tiny` as written (opensem.training.tiny.TinyModelSpec).
"""

from __future__ import annotations

from pathlib import Path

from opensem.stages import register
from opensem.stages.base import MODEL_LIBRARIES, StageContext, StageResult
from opensem.stages.wiring import Wiring
from opensem.training.tiny import TinyModelSpec


@register
class TinyModel:
    name = "tiny_model"
    libraries = MODEL_LIBRARIES
    version = "1"
    Params = TinyModelSpec
    sections = ()  # base_model is one of the manifest's own keys

    def wire(self, wiring: Wiring) -> None:
        """The base model stage, when the base is a tiny random model."""
        spec = getattr(wiring.manifest.base_model, "tiny", None)
        if spec is not None:
            wiring.add(self, spec, {}, provides=("base",), name="base_model")

    def run(
        self, params: TinyModelSpec, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Write the model, tokenizer and generation config into out_dir/model."""
        from opensem.training.tiny import count_parameters, make_tiny_model

        parameters = count_parameters(make_tiny_model(out_dir / "model", params))
        return StageResult(
            summary=(
                f"tiny llama: {parameters / 1e6:.2f}M parameters, {params.num_layers} layers x "
                f"{params.hidden_size}"
            ),
            metrics={"parameters": parameters},
        )
