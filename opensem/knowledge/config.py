"""The manifest's `knowledge:` section: which documents, how they are chunked, embedded and searched."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opensem.curate.config import DedupConfig
from opensem.data.chunking import ChunkingConfig
from opensem.settings.fields import Section, field_like, run_setting

SearchMode = Literal["dense", "keyword", "hybrid"]


class RetrievalChunking(ChunkingConfig):
    """Chunks sized for retrieval: the embedder reads about 256 tokens (1,000 characters) of each."""

    size: int = field_like(ChunkingConfig, "size", default=800)
    overlap: int = field_like(ChunkingConfig, "overlap", default=100)


class SearchSettings(Section):
    mode: SearchMode = run_setting(
        "hybrid",
        description="dense: embedding similarity; keyword: BM25; hybrid: both, fused by rank.",
    )
    top_k: int = run_setting(4, gt=0, le=50, description="Chunks given to the model as sources.")
    min_score: float = run_setting(
        0.25,
        ge=-1,
        le=1,
        description=(
            "Cosine similarity of the best chunk below which the expert says it does not know "
            "(dense and hybrid)."
        ),
    )


class KnowledgeConfig(Section):
    sources: list[str] | None = Field(
        None,
        description=(
            "Documents to index (.txt, .md, .pdf files or folders, project paths); default: the "
            "local paths of data.sources."
        ),
    )
    chunking: RetrievalChunking = Field(default_factory=RetrievalChunking)
    model: str = field_like(DedupConfig, "model")
    batch_size: int = field_like(DedupConfig, "batch_size")
    search: SearchSettings = Field(default_factory=SearchSettings)
