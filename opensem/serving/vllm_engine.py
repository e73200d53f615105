"""The vLLM backend, on CUDA: continuous batching and paged attention, with LoRA adapters.

Same contract as the transformers engine (submit a Generation, load and retire adapters), so the
API does not know which one answers. vLLM runs its own asyncio loop; this class gives it a thread
and bridges requests onto it. It is imported only when a CUDA machine has vllm installed
(`pip install 'opensem[gpu]'`), chosen by opensem.serving.pool.choose_backend.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from opensem.errors import Location, ServeError
from opensem.serving.config import ServeConfig
from opensem.serving.pool import adapter_rank
from opensem.serving.request import Generation, Overloaded

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts


def vllm_lora_rank(rank: int) -> int:
    """The smallest LoRA slot size vLLM accepts that holds an adapter of this rank."""
    fitting = [size for size in VLLM_LORA_RANKS if size >= rank]
    if not fitting:
        raise ServeError(
            f"vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}; an adapter here has rank {rank}",
            Location(key="--backend"),
            "serve it with --backend transformers, or train with a smaller method_config.rank",
        )
    return fitting[0]


class VllmEngine:
    name = "vllm"

    def __init__(
        self, model_path: str, config: ServeConfig, log: logging.Logger, lora_rank: int
    ) -> None:
        """lora_rank: the largest rank of the adapters this base will serve (vLLM sizes its LoRA slots by it)."""
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        self.log, self.max_queue = log, config.max_queue
        self.max_lora_rank = vllm_lora_rank(lora_rank)
        args = AsyncEngineArgs(
            model=model_path,
            enable_lora=True,
            max_loras=8,
            max_lora_rank=self.max_lora_rank,
            max_num_seqs=config.max_batch_size,
        )
        self.engine = AsyncLLMEngine.from_engine_args(args)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="opensem-vllm", daemon=True
        )
        self.thread.start()
        self.loras: dict[str, Any] = {}
        self.next_lora = 1
        self.in_flight = 0
        self.lock = threading.Lock()

    def submit(self, generation: Generation) -> None:
        """Queue a generation on vLLM; Overloaded when max_queue are in flight."""
        with self.lock:
            if self.in_flight >= self.max_queue:
                raise Overloaded(f"{self.in_flight} requests are already in flight for this model")
            self.in_flight += 1
        asyncio.run_coroutine_threadsafe(self._run(generation), self.loop)

    async def _run(self, generation: Generation) -> None:
        import torch
        from vllm import SamplingParams

        request_id = uuid.uuid4().hex
        params = SamplingParams(
            n=1,
            temperature=generation.temperature,
            top_p=generation.top_p,
            seed=generation.seed,
            max_tokens=generation.max_tokens,
            stop=list(generation.stop) or None,
        )
        lora = self.loras.get(generation.adapter) if generation.adapter else None
        sent, reason = "", "stop"
        try:
            async for output in self.engine.generate(
                {"prompt_token_ids": generation.prompt_ids},
                params,
                request_id=request_id,
                lora_request=lora,
            ):
                if generation.cancelled.is_set():
                    await self.engine.abort(request_id)
                    reason = "cancelled"
                    break
                result = output.outputs[0]
                if generation.first_token_at is None and result.token_ids:
                    generation.first_token_at = time.monotonic()
                delta, sent = result.text[len(sent) :], result.text
                generation.completion_tokens = len(result.token_ids)
                if delta and generation.on_delta:
                    generation.on_delta(delta)
                reason = result.finish_reason or reason
            generation.text, generation.finish_reason = sent, reason
        except torch.cuda.OutOfMemoryError as exc:
            generation.error = Overloaded(f"the GPU ran out of memory ({exc})")
        except Exception as exc:  # surfaced to the API as a failed request
            generation.error = exc
        finally:
            with self.lock:
                self.in_flight -= 1
            if generation.on_done:
                generation.on_done()

    def load_adapter(self, adapter_id: str, folder: Path) -> None:
        """Make an adapter servable under adapter_id."""
        from vllm.lora.request import LoRARequest

        rank = adapter_rank(folder)
        if rank > self.max_lora_rank:
            raise ServeError(
                f"the adapter has rank {rank}; this vLLM engine was started for ranks up to {self.max_lora_rank}",
                Location(file=str(folder)),
                "restart the server with every release given at start (its engine is sized by the largest adapter), "
                "or use --backend transformers",
            )

        with self.lock:
            self.loras[adapter_id] = LoRARequest(adapter_id, self.next_lora, str(folder))
            self.next_lora += 1

    def retire_adapter(self, adapter_id: str) -> None:
        """Stop serving an adapter."""
        with self.lock:
            self.loras.pop(
                adapter_id, None
            )  # vLLM evicts it from the GPU when another needs the slot

    def waiting(self) -> int:
        """Generations in flight."""
        return self.in_flight

    def close(self) -> None:
        """Stop vLLM's event loop."""
        self.loop.call_soon_threadsafe(self.loop.stop)
