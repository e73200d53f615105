"""Teacher provider `local`: a model run in this process (transformers; vLLM where CUDA allows).

A model folder of the project, a hub id, or a release a build of this project published (its
adapter merged into the base it ships with): no server, no key, no bill. Chats that miss the
answer cache are generated in batches; re-asks after an invalid answer go one at a time.
Answers are cached like a provider's, keyed by the model's content digest (a folder) or its id,
so a rebuild with the same model replays them, and every generation counts against the request
budget like a paid request would.

Small models make weak teachers and weaker judges (a 135M model rarely writes valid JSON for a
verdict): describe() says which model answers, and the reports say how many answers were invalid.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from opensem.settings.fields import run_setting
from opensem.teachers.base import (
    ChatRequest,
    ChatResult,
    ChatSettings,
    Message,
    ProviderOptions,
    RequestPlan,
    TeacherError,
    Validator,
    cached_plan,
    estimate_tokens,
    register_provider,
)
from opensem.teachers.batch import Answer, Meter, run_batch
from opensem.teachers.cache import TeacherCache, answer_key

log = logging.getLogger("opensem.teacher")


class LocalOptions(ProviderOptions):
    provider: Literal["local"] = Field(
        "local",
        description=(
            "local: a model run in this process through transformers (vLLM where CUDA allows): a "
            "model folder or release of the project, or a hub id."
        ),
    )
    model: str = Field(
        min_length=1,
        description=(
            "A model folder (./models/teacher, relative to the project root), a release folder of "
            "this project (an adapter with the base it ships, e.g. ./build/registry/espresso/v1), "
            "or a hub id."
        ),
    )
    batch_size: int = run_setting(8, gt=0, description="Chats generated at once.")
    seed: int = Field(
        0, description="Seed of sampling when temperature is above 0 (greedy decoding ignores it)."
    )


@register_provider
class LocalProvider:
    name: ClassVar[str] = "local"
    language_model: ClassVar[bool] = True
    Options = LocalOptions

    def __init__(
        self,
        config: ChatSettings,
        cache_dir: Path | None = None,
        backoff_s: float = 0.0,
        project_root: Path | None = None,
    ) -> None:
        self.config: Any = config
        self.cache = TeacherCache(Path(cache_dir) / "teacher") if cache_dir is not None else None
        self.root = project_root or Path.cwd()
        self._loaded: tuple[Any, ...] | None = None
        self._identity: str | None = None
        self._fresh: dict[str, Answer] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        """The teacher, in words."""
        return f"local model {self.config.model}, in this process"

    def label(self) -> str:
        """The teacher's short name, for records."""
        return f"{self.name}:{self.config.model}"

    def path(self) -> str:
        """The folder to load, or the hub id as written."""
        model = str(self.config.model)
        return (
            str((self.root / Path(model).expanduser()).resolve())
            if model.startswith(("./", "../", "/", "~"))
            else model
        )

    def identity(self) -> str:
        """What the cache keys answers by: a folder's content digest (so a retrained model is asked
        again), or the hub id."""
        if self._identity is None:
            path = Path(self.path())
            if path.is_dir():
                from opensem.core.digests import digest_tree

                self._identity = f"sha256:{digest_tree(path)}"
            else:
                self._identity = str(self.config.model)
        return self._identity

    def key(self, request: ChatRequest, messages: list[Message]) -> str:
        """The cache key of a request's answer: model, messages and sampling."""
        c = self.config
        parameters = {"temperature": c.temperature, "max_tokens": c.max_tokens, "seed": c.seed}
        return answer_key(self.name, self.identity(), None, messages, parameters)

    def plan(self, requests: Sequence[ChatRequest]) -> RequestPlan:
        """What would be generated, after the answer cache."""
        return cached_plan(
            requests,
            lambda r: self.cache is None or self.cache.get(self.key(r, list(r.messages))) is None,
            self.config.max_tokens,
        )

    def complete_many(
        self,
        requests: Sequence[ChatRequest],
        validate: Validator | None = None,
        on_result: Callable[[ChatResult], None] | None = None,
        request_limit: int | None = None,
    ) -> list[ChatResult]:
        """Generate the answers in this process, batched, with the answer cache."""
        meter = Meter(limit=request_limit)
        first = {self.key(r, list(r.messages)): list(r.messages) for r in requests}
        missing = [
            (key, messages)
            for key, messages in first.items()
            if self.cache is None or self.cache.get(key) is None
        ]
        for start in range(0, len(missing), self.config.batch_size):
            batch = missing[start : start + self.config.batch_size]
            for _ in batch:
                meter.take()
            texts = self._generate([messages for _, messages in batch], seed_offset=start)
            self._fresh.update(
                {key: _answer(text, messages) for (key, messages), text in zip(batch, texts)}
            )
        try:
            return run_batch(
                requests,
                self._ask,
                self.key,
                self.cache,
                validate,
                self.config.max_retries,
                1,
                meter,
                on_result,
            )
        finally:
            self._fresh.clear()

    def _ask(self, request: ChatRequest, messages: list[Message], meter: Meter) -> Answer:
        """A first answer generated in the batch above, or one generation now (a re-ask)."""
        found = self._fresh.pop(self.key(request, messages), None)
        if found is not None:
            return found
        meter.take()
        return _answer(self._generate([messages], seed_offset=0)[0], messages)

    def _generate(self, chats: list[list[Message]], seed_offset: int) -> list[str]:
        c = self.config
        engine = self._engine()
        if engine[0] == "vllm":
            from vllm import SamplingParams

            sampling = SamplingParams(
                temperature=c.temperature, max_tokens=c.max_tokens, seed=c.seed + seed_offset
            )
            return [
                output.outputs[0].text.strip()
                for output in engine[1].chat(chats, sampling, use_tqdm=False)
            ]
        from opensem.core.stage import silent_progress
        from opensem.training.generation import GenerationSettings, generate_answers

        _, model, tokenizer = engine
        settings = GenerationSettings(
            max_new_tokens=c.max_tokens,
            temperature=c.temperature,
            seed=c.seed + seed_offset,
            batch_size=c.batch_size,
            max_seq_length=_context_length(model),
        )
        return generate_answers(model, tokenizer, chats, settings, silent_progress("", None))

    def _engine(self) -> tuple[Any, ...]:
        """("vllm", LLM) on CUDA with vllm installed, else ("transformers", model, tokenizer); loaded once."""
        with self._lock:
            if self._loaded is None:
                self._loaded = _load(self.path(), str(self.config.model), self.config.seed)
                log.info("teacher: %s loaded (%s)", self.config.model, self._loaded[0])
        return self._loaded


def _load(path: str, name: str, seed: int) -> tuple[Any, ...]:
    import importlib.util

    import torch

    from opensem.errors import StageError
    from opensem.training.methods.base import (
        artifact_in,
        load_causal_lm,
        load_tokenizer,
        quiet_libraries,
    )

    found = artifact_in(Path(path)) if Path(path).is_dir() else None
    adapter = found is not None and found[0] == "adapter"
    if not adapter and torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None:
        from vllm import LLM

        return ("vllm", LLM(model=path, seed=seed))
    with quiet_libraries():
        try:
            if adapter:  # a release: its adapter merged into the base it ships (or names)
                from opensem.training.methods.distill import load_teacher, teacher_model_dir

                shipped = Path(path) / "base_model"
                return (
                    "transformers",
                    load_teacher(path, str(shipped) if shipped.is_dir() else None),
                    load_tokenizer(teacher_model_dir(path), "teacher"),
                )
            return (
                "transformers",
                load_causal_lm(path, "teacher"),
                load_tokenizer(path, "teacher"),
            )
        except StageError as exc:
            raise TeacherError(
                f"the local teacher cannot load {name!r}: {exc}",
                hint=(
                    "name a model folder of the project (./models/...), a release folder, or a hub "
                    "id this machine can reach"
                ),
            ) from exc


def _context_length(model: Any) -> int:
    """The longest prompt the model takes, leaving nothing to chance for models that name none."""
    return int(getattr(model.config, "max_position_embeddings", 0) or 2048)


def _answer(text: str, messages: list[Message]) -> Answer:
    return Answer(
        text=text,
        input_tokens=sum(estimate_tokens(m["content"]) for m in messages),
        output_tokens=estimate_tokens(text),
        requests=1,
    )
