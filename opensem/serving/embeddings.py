"""/v1/embeddings: OpenAI's embeddings API with a release's embedder (its knowledge base's)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from opensem.serving.openai_api import ApiError, EmbeddingRequest

MAX_INPUTS = 2048  # OpenAI's own limit per request


async def embed(served: Any, body: EmbeddingRequest) -> dict[str, Any]:
    """The input embedded by the model the release's knowledge base was built with."""
    if served is None:
        raise ApiError(
            404, f"the model {body.model!r} does not exist", param="model", code="model_not_found"
        )
    if served.knowledge is None:
        raise ApiError(
            400,
            f"{body.model} has no knowledge base, so no embedder: add `knowledge:` to its manifest",
            param="model",
        )
    texts = body.texts()
    if not texts or len(texts) > MAX_INPUTS:
        raise ApiError(400, f"input must hold 1 to {MAX_INPUTS} texts", param="input")
    vectors = await asyncio.to_thread(served.knowledge.encode, texts)
    tokens = await asyncio.to_thread(served.knowledge.embedder.tokens, texts)
    encoded = (
        [base64.b64encode(vector.astype("<f4").tobytes()).decode() for vector in vectors]
        if body.encoding_format == "base64"  # what the openai client asks for by default
        else [[float(x) for x in vector] for vector in vectors]
    )
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": embedding}
            for i, embedding in enumerate(encoded)
        ],
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
