"""Serving experts: an OpenAI-compatible server for published releases.

- releases.py: what to serve (a manifest's latest release, a registry tag, a folder), pulled and checked
- engine.py, decoding.py: the transformers backend: one base, many adapters, batched decoding
- vllm_engine.py: the vLLM backend, on CUDA
- pool.py: which release answers for each model name, on which engine; hot swaps
- openai_api.py, completions.py, app.py: the HTTP API (FastAPI), streaming over SSE
- ops.py: metrics, keys, rate limits, request logs; server.py: running it; config.py: its settings

Nothing here is imported by `import opensem` or `opensem --help`.
"""
