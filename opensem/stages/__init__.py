"""The registry of stage kinds: one module per kind, each registering itself by name.

The order of PIPELINE is the order stages join the graph (and the order their manifest sections
appear in the schema); a new stage kind is one more name here. Stage modules import nothing heavy
at module level, so loading them all is cheap.
"""

from __future__ import annotations

from opensem.plugins import Registry
from opensem.stages.base import StageKind

PIPELINE = (
    "tiny_model",
    "gguf_model",
    "ingest",
    "index",
    "synthesize",
    "dedup",
    "edits",
    "split",
    "decontaminate",
    "pretrain",
    "tokenize",
    "train",
    "merge",
    "baseline",
    "evaluate",
    "ground",
    "review",
    "compare",
    "fold",
    "quantize",
    "gate",
    "publish",
)
# A stage kind from elsewhere joins before publish, so what it adds to a release is published.
STAGES: Registry[StageKind] = Registry(
    "stage kind", "opensem.stages", PIPELINE, outside_before="publish"
)
register = STAGES.register


def get_stage(name: str) -> StageKind:
    """The registered stage kind called name."""
    return STAGES.get(name)
