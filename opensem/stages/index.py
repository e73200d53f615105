"""Stage kind index: the knowledge base, the expert's documents chunked, embedded and indexed.

Its lot is the documents' bytes, the chunking, and the embedder; how it is searched (mode, top_k,
min_score) is a run setting. Embeddings come from the build cache the dedup stage also keeps (by
model digest and chunk text), so after one document is edited only that document's changed
chunks are embedded again. out/knowledge/ is published with the release.
"""

from __future__ import annotations

from pathlib import Path

from opensem.core.graph import Input
from opensem.data.sources import glob_base, is_glob, is_url
from opensem.knowledge.config import KnowledgeConfig
from opensem.settings.sections import section
from opensem.stages import register
from opensem.stages.base import (
    EMBEDDING_LIBRARIES,
    ReleasePart,
    StageContext,
    StageResult,
    folder_files,
)
from opensem.stages.wiring import Wiring

KNOWLEDGE_FOLDER = "knowledge"


@register
class Index:
    name = "index"
    holds = "documents"
    libraries = EMBEDDING_LIBRARIES
    version = "2"  # 2: the keyword index is bm25s, not FTS5
    Params = KnowledgeConfig
    sections = (
        section(
            "knowledge",
            KnowledgeConfig | None,
            None,
            description=(
                "A knowledge base of the documents: answers cite the chunks they used; omit for "
                "none."
            ),
        ),
    )

    def wire(self, wiring: Wiring) -> None:
        """The index, when the manifest has a knowledge section: each document path is an input."""
        config = wiring.section("knowledge")
        if config is None:
            return
        inputs: dict[str, Input | None] = {}
        if config.sources is not None:
            for index, path in enumerate(config.sources):
                inputs[f"docs{index}"] = wiring.source(path, ("knowledge", "sources", index))
        else:
            for index, source in enumerate(wiring.loaded.sources()):
                if is_url(source.path):
                    continue  # a URL is read by ingest; the knowledge base indexes project files
                path = glob_base(source.path) if is_glob(source.path) else source.path
                if wiring.exists(path):
                    inputs[f"docs{index}"] = wiring.source(path, ("data", "sources"))
        if not inputs:
            wiring.problem(
                ("knowledge",),
                "the knowledge base has no documents to index",
                "list them under knowledge.sources (files or folders of .txt, .md, .pdf)",
            )
            return
        inputs.update(wiring.model_inputs(config.model, ("knowledge", "model")))
        wiring.add(self, config, inputs, provides=("knowledge",))

    def release(self, out_dir: Path, slot: str) -> ReleasePart:
        """The knowledge base, under knowledge/."""
        return ReleasePart(folder_files(out_dir / KNOWLEDGE_FOLDER, f"{KNOWLEDGE_FOLDER}/"))

    def run(
        self, params: KnowledgeConfig, inputs: dict[str, Path], out_dir: Path, ctx: StageContext
    ) -> StageResult:
        """Chunk every document, embed the chunks (cached by text) and write the index."""
        from opensem.curate.dedup import open_embedder
        from opensem.curate.embed import embed_texts
        from opensem.errors import DataError
        from opensem.knowledge.documents import document_chunks, document_files
        from opensem.knowledge.index import write_index

        roots = [Path(path) for slot, path in sorted(inputs.items()) if slot.startswith("docs")]
        files = document_files(roots)
        if not files:
            raise DataError(
                "no documents to index (.txt, .md or .pdf) under "
                + ", ".join(_relative(root, ctx.project_root) for root in roots),
                hint="put the documents there, or list others under knowledge.sources",
            )
        chunks = [
            chunk
            for file in files
            for chunk in document_chunks(file, _relative(file, ctx.project_root), params.chunking)
        ]
        embedder, cache = open_embedder(params.model, inputs.get("model"), params.batch_size, ctx)
        with cache:
            vectors, stats = embed_texts(
                [c.text for c in chunks], embedder, cache, ctx.progress, "embedding chunks"
            )
        facts = write_index(
            out_dir / KNOWLEDGE_FOLDER,
            chunks,
            vectors,
            {
                "name": params.model,
                "digest": embedder.ref.digest,
                "dimension": int(vectors.shape[1]) if len(chunks) else embedder.dimension,
            },
        )
        return StageResult(
            summary=(
                f"{facts['chunks']} chunks of {facts['documents']} documents; {stats.encoded} "
                f"embedded, {stats.cached} from the cache"
            ),
            metrics={
                "chunks": facts["chunks"],
                "documents": facts["documents"],
                "embedded": stats.encoded,
                "cached": stats.cached,
            },
        )


def _relative(path: Path, root: Path) -> str:
    """A path as the project writes it."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
