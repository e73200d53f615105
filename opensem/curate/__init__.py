"""The Curator: what the dedup and decontaminate stages are made of.

- text.py: which text of a record is compared, and its normalized digest
- embedder.py: a sentence-transformers model name resolved to a local directory and its digest
- cache.py: the embedding cache, keyed by (model digest, text digest), safe against a killed run
- embed.py: embedding texts through the cache with a progress bar
- kmeans.py, search.py: semantic dedup of unit vectors (blockwise exact, or SemDeDup clusters)
- dedup.py, dedup_report.py: the dedup stage's passes and its report
- ngrams.py, decontam.py, decontam_report.py: the decontaminate stage's checks and its report
- report.py: report.json, report.md and similarity histograms
- wiring.py: manifest -> the two stages' params, inputs and settings

Nothing here imports torch or sentence_transformers at module level.
"""
