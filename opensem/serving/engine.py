"""The transformers backend: one loaded model, a bounded queue, and a worker that batches.

The model is a base with any number of LoRA adapters (peft), or one whole model. Requests wait in
a queue (full: Overloaded, which the API answers with 503); a worker thread takes what is waiting,
up to a batch, and decodes it together: one prefill of the left-padded prompts, then one forward
per step with the KV cache. Adapters mix in one batch (peft's per-row adapter_names), except DoRA
adapters, which batch only with themselves. Adapters are loaded and retired between batches, so a
request in flight always finishes on the adapter it started with. An out-of-memory error fails
that batch's requests (503) and the worker goes on.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opensem.serving.decoding import Sampler, TextTracker
from opensem.serving.request import Generation, Overloaded
from opensem.training.generation import stop_token_ids

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch
LONG_PROMPTS = (
    1024  # prompt tokens in a batch past which its activations are handed back to the system
)


def give_memory_back() -> None:
    """Return freed heap pages to the system (glibc keeps them otherwise: one long prompt's
    activations would stay in the server's resident memory for good)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl): nothing to trim
        pass


class TransformersEngine:
    """A model and its worker thread; thread-safe submit, load and retire."""

    name = "transformers"

    def __init__(
        self,
        model_path: str,
        max_batch: int,
        max_queue: int,
        batch_wait_s: float,
        log: logging.Logger,
    ) -> None:
        import torch

        from opensem.training.methods.base import load_causal_lm, load_tokenizer, quiet_libraries

        with quiet_libraries():
            self.model = load_causal_lm(model_path, "serve")
            self.tokenizer = load_tokenizer(model_path, "serve")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = self.model.to(self.device).eval()
        self.eos = set(stop_token_ids(self.model, self.tokenizer))
        self.peft = False
        self.dora: set[str] = set()
        self.max_batch, self.batch_wait_s, self.log = max_batch, batch_wait_s, log
        self.queue: queue.Queue[Generation] = queue.Queue(maxsize=max_queue)
        self.commands: queue.Queue[Callable[[], None]] = queue.Queue()
        self.running = True
        self.batches = self.batched = 0  # batches run and requests in them, for /metrics
        self.worker = threading.Thread(
            target=self._loop, name=f"opensem-engine-{Path(model_path).name}", daemon=True
        )
        self.worker.start()

    # -- called from the API's threads -----------------------------------------------------------

    def submit(self, generation: Generation) -> None:
        """Queue a generation; Overloaded when the queue is full."""
        try:
            self.queue.put_nowait(generation)
        except queue.Full:
            raise Overloaded(
                f"{self.queue.maxsize} requests are already waiting for this model"
            ) from None

    def load_adapter(self, adapter_id: str, folder: Path) -> None:
        """Load an adapter between two batches; returns once it is ready."""
        self._between_batches(lambda: self._load(adapter_id, folder))

    def retire_adapter(self, adapter_id: str) -> None:
        """Drop an adapter between two batches (no request in flight uses it any more)."""
        self._between_batches(lambda: self._retire(adapter_id))

    def close(self) -> None:
        """Stop the worker; requests still waiting fail (503) rather than wait for their timeout."""
        self.running = False
        self.worker.join(timeout=10)
        while not self.queue.empty():
            generation = self.queue.get_nowait()
            generation.error = Overloaded("the model was unloaded (server stopping)")
            if generation.on_done:
                generation.on_done()

    def waiting(self) -> int:
        """Generations waiting for a batch."""
        return self.queue.qsize()

    # -- the worker ------------------------------------------------------------------------------

    def _between_batches(self, command: Callable[[], None]) -> None:
        done, failure = threading.Event(), []

        def run() -> None:
            try:
                command()
            except Exception as exc:  # surfaced to the caller below
                failure.append(exc)
            finally:
                done.set()

        self.commands.put(run)
        done.wait()
        if failure:
            raise failure[0]

    def _load(self, adapter_id: str, folder: Path) -> None:
        import json

        from peft import PeftModel

        from opensem.training.methods.base import quiet_libraries

        with quiet_libraries():
            if not self.peft:
                self.model = (
                    PeftModel.from_pretrained(self.model, str(folder), adapter_name=adapter_id)
                    .to(self.device)
                    .eval()
                )
                self.peft = True
            else:
                self.model.load_adapter(str(folder), adapter_name=adapter_id)
        if json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("use_dora"):
            self.dora.add(adapter_id)

    def _retire(self, adapter_id: str) -> None:
        if self.peft and adapter_id in self.model.peft_config and len(self.model.peft_config) > 1:
            import warnings

            # "was active, now deleted": batches name their adapters per row
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.model.delete_adapter(adapter_id)
        self.dora.discard(adapter_id)

    def _loop(self) -> None:
        while self.running:
            while not self.commands.empty():
                self.commands.get_nowait()()
            try:
                first = self.queue.get(timeout=0.05)
            except queue.Empty:
                continue
            batch = [g for g in self._gather(first) if not self._dropped(g)]
            if not batch:
                continue
            self.batches, self.batched = self.batches + 1, self.batched + len(batch)
            try:
                self._generate(batch)
            except Exception as exc:  # one batch's failure never stops the worker
                self._isolate(batch, exc)
            if sum(len(g.prompt_ids) for g in batch) >= LONG_PROMPTS:
                give_memory_back()

    def _isolate(self, batch: list[Generation], exc: Exception) -> None:
        """A failed batch's requests that produced nothing yet run again one by one, so a request
        that cannot run fails alone and its neighbours are answered."""
        if len(batch) == 1 or self._out_of_memory(exc):
            self._fail(batch, exc)
            return
        self.log.warning(
            "serve: a batch of %d failed (%s: %s); running its requests one by one",
            len(batch),
            type(exc).__name__,
            exc,
        )
        for generation in batch:
            # Its text was already streamed: it cannot start again
            if generation.first_token_at is not None:
                self._fail([generation], exc)
                continue
            try:
                self._generate([generation])
            except Exception as alone:
                self._fail([generation], alone)

    def _gather(self, first: Generation) -> list[Generation]:
        """The first request and what else is waiting that can run beside it, up to a batch."""
        batch = [first]
        held: list[Generation] = []
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.max_batch:
            try:
                candidate = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            mixable = first.adapter not in self.dora and candidate.adapter not in self.dora
            (batch if mixable or candidate.adapter == first.adapter else held).append(candidate)
        for generation in held:  # back to the queue for a later batch
            self.queue.put(generation)
        return batch

    @staticmethod
    def _dropped(generation: Generation) -> bool:
        """A request whose client gave up (timeout, disconnect) while it waited is not generated for."""
        if generation.cancelled.is_set():
            generation.finish_reason = "cancelled"
            if generation.on_done:
                generation.on_done()
            return True
        return False

    @staticmethod
    def _out_of_memory(exc: Exception) -> bool:
        import torch

        return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()

    def _fail(self, batch: list[Generation], exc: Exception) -> None:
        import torch

        out_of_memory = self._out_of_memory(exc)
        if out_of_memory and torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.log.error("serve: a batch of %d failed: %s: %s", len(batch), type(exc).__name__, exc)
        for generation in batch:
            generation.error = (
                Overloaded(f"the device ran out of memory for this batch ({exc})")
                if out_of_memory
                else exc
            )
            if generation.on_done:
                generation.on_done()

    def _generate(self, batch: list[Generation]) -> None:
        import torch

        pad = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        width = max(len(g.prompt_ids) for g in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, generation in enumerate(batch):
            ids[row, width - len(generation.prompt_ids) :] = torch.tensor(generation.prompt_ids)
            mask[row, width - len(generation.prompt_ids) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        context, extra = self._adapters_of(batch)
        samplers = [Sampler(g.temperature, g.top_p, g.seed) for g in batch]
        texts = [TextTracker(self.tokenizer, g.stop) for g in batch]
        live = [True] * len(batch)
        with torch.inference_mode(), context:
            # Only the last position's logits are read: a 49k vocabulary over every prompt token
            # would cost more than the prompt.
            output = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                use_cache=True,
                logits_to_keep=1,
                **extra,
            )
            for _ in range(max(g.max_tokens for g in batch)):
                logits = output.logits[:, -1].float().cpu()
                chosen = []
                for row, generation in enumerate(batch):
                    token = samplers[row].pick(logits[row]) if live[row] else pad
                    chosen.append(token)
                    if live[row]:
                        live[row] = self._advance(generation, texts[row], token)
                if not any(live):
                    break
                mask = torch.cat([mask, torch.ones((len(batch), 1), dtype=torch.long)], dim=1)
                positions = positions[:, -1:] + 1
                output = self.model(
                    input_ids=torch.tensor(chosen)[:, None].to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=positions.to(self.device),
                    past_key_values=output.past_key_values,
                    use_cache=True,
                    **extra,
                )
        for row, generation in enumerate(batch):
            if live[row]:
                self._finish(generation, texts[row], "length")

    def _adapters_of(self, batch: list[Generation]) -> tuple[Any, dict[str, Any]]:
        """How the model runs this batch: one adapter made active (fast), the base with adapters
        off, or a mix named per row (peft's adapter_names, which walks every module each step)."""
        names = {g.adapter or BASE for g in batch}
        if not self.peft:
            return contextlib.nullcontext(), {}
        if names == {BASE}:
            return self.model.disable_adapter(), {}
        if len(names) == 1:
            self.model.set_adapter(names.pop())
            return contextlib.nullcontext(), {}
        return contextlib.nullcontext(), {"adapter_names": [g.adapter or BASE for g in batch]}

    def _advance(self, generation: Generation, text: TextTracker, token: int) -> bool:
        """Take one token for a sequence; returns whether it goes on."""
        if generation.cancelled.is_set():
            self._finish(generation, text, "cancelled")
            return False
        if generation.first_token_at is None:
            generation.first_token_at = time.monotonic()
        if token in self.eos:
            self._finish(generation, text, "stop")
            return False
        generation.completion_tokens += 1
        delta = text.add(token)
        if delta and generation.on_delta:
            generation.on_delta(delta)
        if text.stopped:
            self._finish(generation, text, "stop")
            return False
        if generation.completion_tokens >= generation.max_tokens:
            self._finish(generation, text, "length")
            return False
        return True

    def _finish(self, generation: Generation, text: TextTracker, reason: str) -> None:
        rest = text.rest()
        if rest and generation.on_delta and reason != "cancelled":
            generation.on_delta(rest)
        generation.text, generation.finish_reason = text.text, reason
        if generation.on_done:
            generation.on_done()
