"""Stage kind tiny_model: a small random Llama with a locally trained tokenizer, built offline.

It stands in for a hub base model in tests, demos and CI, through the same "base" input slot the
train and evaluate stages read a real base model from.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from opensem.stages import register
from opensem.training.tiny import MIN_VOCAB_SIZE
from opensem.stages.base import StageContext, StageParams, StageResult


@register
class TinyModel:
    name = "tiny_model"
    version = "1"

    class Params(StageParams):
        hidden_size: int = Field(64, gt=0)
        num_layers: int = Field(2, gt=0)
        num_heads: int = Field(4, gt=0)
        vocab_size: int = Field(2000, ge=MIN_VOCAB_SIZE, description="upper bound; the tokenizer corpus decides the exact size")
        seed: int = 0

        @model_validator(mode="after")
        def _heads_divide_hidden(self) -> "TinyModel.Params":
            if self.hidden_size % self.num_heads:
                raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
            if (self.hidden_size // self.num_heads) % 2:
                raise ValueError(f"hidden_size / num_heads must be even for rotary embeddings, got {self.hidden_size // self.num_heads}")
            return self

    def run(self, params: Params, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        """Write the model, tokenizer and generation config into out_dir/model."""
        from opensem.training.tiny import count_parameters, make_tiny_model

        model_dir = make_tiny_model(
            out_dir / "model",
            hidden_size=params.hidden_size,
            num_layers=params.num_layers,
            num_heads=params.num_heads,
            vocab_size=params.vocab_size,
            seed=params.seed,
        )
        parameters = count_parameters(model_dir)
        return StageResult(
            summary=f"tiny llama: {parameters / 1e6:.2f}M parameters, {params.num_layers} layers x {params.hidden_size}",
            metrics={"parameters": parameters},
        )
