"""The stage runner the build engine is handed: node -> the stage kind's Params -> its run.

The node carries its params in two views (what enters the lot, and the run settings); the stage
gets them merged back into its one Params model, exactly as the manifest gave them.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from opensem.core.graph import StageNode
from opensem.core.stage import StageContext, StageResult
from opensem.manifest.fields import merge_views
from opensem.stages import get_stage

# Libraries whose versions shape results, recorded in every store entry's meta.json.
LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "sentence-transformers", "doit", "fsspec")
# What build -j imports up front (PipelineRunner.prepare), by the stage kinds that use it.
MODEL_KINDS = {"tiny_model", "gguf_model", "pretrain", "tokenize", "train", "baseline", "evaluate", "review", "compare", "merge", "fold", "quantize"}
TRAINING_KINDS = {"pretrain", "tokenize", "train"}
EMBEDDING_KINDS = {"dedup", "decontaminate"}
LAZY_NAMES = ("AutoConfig", "AutoModelForCausalLM", "AutoTokenizer", "GenerationConfig", "LlamaConfig", "LlamaForCausalLM",
              "PreTrainedTokenizerFast", "Trainer", "TrainerCallback", "TrainingArguments")


class PipelineRunner:
    def run(self, node: StageNode, inputs: dict[str, Path], out_dir: Path, ctx: StageContext) -> StageResult:
        kind = get_stage(node.kind)
        params = kind.Params.model_validate(merge_views(node.params, node.settings))
        return kind.run(params, inputs, out_dir, ctx)

    def prepare(self, kinds: set[str]) -> None:
        """Import the model libraries the kinds need, in this thread (transformers' lazy module
        attributes fail when two threads resolve them at once)."""
        if kinds & MODEL_KINDS:
            import peft  # noqa: F401
            import torch  # noqa: F401
            import transformers

            for name in LAZY_NAMES:
                getattr(transformers, name)
        if kinds & EMBEDDING_KINDS:
            import sentence_transformers  # noqa: F401
        if kinds & TRAINING_KINDS:
            import datasets  # noqa: F401
            import trl  # noqa: F401

    def library_versions(self) -> dict[str, str]:
        """Versions of the libraries that shaped a result, read without importing them."""
        found: dict[str, str] = {}
        for name in LIBRARIES:
            try:
                found[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
        return found
