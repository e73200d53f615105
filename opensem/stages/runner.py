"""The stage runner the build engine is handed: node -> the stage kind's Params -> its run.

The node carries its params in two views (what enters the lot, and the run settings); the stage
gets them merged back into its one Params model, exactly as the manifest gave them.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from opensem.core.graph import StageNode
from opensem.core.stage import StageContext, StageResult
from opensem.settings.fields import merge_views
from opensem.stages import get_stage

# Libraries whose versions shape results, recorded in every store entry's meta.json.
LIBRARIES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "sentence-transformers",
    "doit",
    "fsspec",
)
LAZY_NAMES = (
    "AutoConfig",
    "AutoModelForCausalLM",
    "AutoTokenizer",
    "GenerationConfig",
    "LlamaConfig",
    "LlamaForCausalLM",
    "PreTrainedTokenizerFast",
    "Trainer",
    "TrainerCallback",
    "TrainingArguments",
)


def typed_params(node: StageNode) -> Any:
    """The node's params and run settings as its stage kind's Params model."""
    return get_stage(node.kind).Params.model_validate(merge_views(node.params, node.settings))


class PipelineRunner:
    def run(
        self, node: StageNode, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Validate the node's params and run its stage kind."""
        return get_stage(node.kind).run(typed_params(node), inputs, out_dir, ctx)

    def prepare(self, kinds: set[str]) -> None:
        """Import the libraries the kinds declare, in this thread (transformers' lazy module
        attributes fail when two threads resolve them at once)."""
        import importlib

        wanted = dict.fromkeys(
            library
            for kind in sorted(kinds)
            for library in getattr(get_stage(kind), "libraries", ())
        )
        for library in wanted:  # in the order kinds declare them: torch before what builds on it
            module = importlib.import_module(library)
            if library == "transformers":
                for name in LAZY_NAMES:
                    getattr(module, name)

    def library_versions(self) -> dict[str, str]:
        """Versions of the libraries that shaped a result, read without importing them."""
        found: dict[str, str] = {}
        for name in LIBRARIES:
            try:
                found[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
        return found
