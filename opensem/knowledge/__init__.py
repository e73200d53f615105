"""The knowledge base: an expert's documents chunked, embedded and indexed, so answers can quote them.

config: the manifest's `knowledge:` section. documents: documents read into pages and cut into
chunks that keep their source, page, character offsets and heading. index: writing the index
(SQLite for the chunks and their BM25 keyword index, FAISS for the vectors) and searching it
(dense, keyword or hybrid). answers: the prompt with numbered sources, and the append-only log of
answers given with them.
"""
