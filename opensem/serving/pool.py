"""The models a server answers for: each name's release, on the engine that runs it.

Adapter releases of one base share one engine (one loaded base, many adapters); a whole-model
release gets an engine of its own. Swapping a name to a new release (hot reload) loads the new
one first, points the name at it, and retires the old one only when its last request in flight
has finished, so no request is dropped or answered by two releases.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opensem.data.persona import SYSTEM_PROMPT_FILE
from opensem.serving.config import ServeConfig
from opensem.serving.releases import Release


@dataclass
class Served:
    """What answers for a model name now."""

    release: Release
    engine: Any  # TransformersEngine or VllmEngine
    adapter: str | None  # the adapter's id inside its engine; None: the engine's own model
    tokenizer: Any  # the release's tokenizer, chat template as trained
    # The persona it was trained with: put before chats that bring no system message.
    system: str | None = None
    knowledge: Any = None  # a Retriever over the release's knowledge base, when it has one
    in_flight: int = 0
    retired: bool = False


@dataclass
class ModelPool:
    config: ServeConfig
    log: logging.Logger
    backend: str = ""
    served: dict[str, Served] = field(default_factory=dict)
    engines: dict[str, Any] = field(
        default_factory=dict
    )  # "base:<digest or hub id>" or "model:<path>" -> engine
    lock: threading.Lock = field(default_factory=threading.Lock)
    loads: int = 0
    lora_ranks: dict[str, int] = field(
        default_factory=dict
    )  # engine key -> the largest adapter rank it will serve

    def __post_init__(self) -> None:
        self.backend = choose_backend(self.config.backend, self.log)

    def expect(self, releases: list[Release]) -> None:
        """Before loading: the largest adapter rank per base, so an engine that sizes LoRA slots (vLLM)
        fits them all."""
        for release in releases:
            if release.kind == "adapter":
                key = f"base:{base_identity(str(release.base))}"
                self.lora_ranks[key] = max(
                    self.lora_ranks.get(key, 0), adapter_rank(release.artifact)
                )

    def add(self, release: Release) -> Served:
        """Load a release and point its name at it; a release already served under the name retires."""
        from opensem.training.methods.base import load_tokenizer, quiet_libraries

        if release.kind == "adapter":
            key = f"base:{base_identity(str(release.base))}"
            self.lora_ranks[key] = max(self.lora_ranks.get(key, 0), adapter_rank(release.artifact))
            engine = self._engine(key, str(release.base))
            self.loads += (
                1  # an id never reused, so a request in flight keeps the weights it started with
            )
            adapter: str | None = (
                f"{release.name}@{(release.lot or release.tag or 'local')[:12]}_{self.loads}"
            )
            engine.load_adapter(adapter, release.artifact)
        else:
            engine, adapter = self._engine(f"model:{release.artifact}", str(release.artifact)), None
        with quiet_libraries():
            tokenizer = load_tokenizer(str(release.artifact), "serve")
        persona = release.artifact / SYSTEM_PROMPT_FILE
        new = Served(
            release,
            engine,
            adapter,
            tokenizer,
            persona.read_text(encoding="utf-8").strip() if persona.is_file() else None,
            knowledge=_retriever(release),
        )
        with self.lock:
            old = self.served.get(release.name)
            self.served[release.name] = new
        if old is not None:
            self.log.info(
                "serve: %s now answers with %s (lot %s); the previous release retires when its requests finish",
                release.name,
                release.tag,
                (release.lot or "")[:12],
            )
            self._retire(old)
        return new

    def remove(self, name: str) -> bool:
        """Stop serving name (its requests in flight finish first); False when not served."""
        with self.lock:
            served = self.served.pop(name, None)
        if served is None:
            return False
        self._retire(served)
        return True

    def acquire(self, name: str) -> Served | None:
        """The served model called name, marked in use, or None."""
        with self.lock:
            served = self.served.get(name)
            if served is not None:
                served.in_flight += 1
            return served

    def release(self, served: Served) -> None:
        """A request is done with the served model."""
        with self.lock:
            served.in_flight -= 1
            done = served.retired and served.in_flight == 0
        if done:
            self._drop(served)

    def _retire(self, served: Served) -> None:
        with self.lock:
            served.retired = True
            idle = served.in_flight == 0
        if idle:
            self._drop(served)

    def _drop(self, served: Served) -> None:
        if served.adapter is not None:
            threading.Thread(
                target=served.engine.retire_adapter, args=(served.adapter,), daemon=True
            ).start()
        else:
            with self.lock:
                unused = not any(s.engine is served.engine for s in self.served.values())
                if unused:
                    self.engines = {
                        key: engine
                        for key, engine in self.engines.items()
                        if engine is not served.engine
                    }
            if unused:
                served.engine.close()

    def _engine(self, key: str, model_path: str) -> Any:
        with self.lock:
            engine = self.engines.get(key)
        if engine is None:
            engine = make_engine(
                self.backend, model_path, self.config, self.log, self.lora_ranks.get(key, 0)
            )
            with self.lock:
                self.engines[key] = engine
        return engine

    def names(self) -> list[str]:
        """The served models' names."""
        with self.lock:
            return sorted(self.served)

    def running(self) -> list[Any]:
        """The engines loaded now."""
        with self.lock:
            return list(self.engines.values())

    def close(self) -> None:
        """Stop every engine."""
        for engine in self.engines.values():
            engine.close()


def base_identity(base: str) -> str:
    """What makes two bases the same: a folder's content (each tiny release ships its own copy), or a hub id."""
    from opensem.core.digests import digest_tree

    return digest_tree(Path(base)) if Path(base).is_dir() else base


def choose_backend(requested: str, log: logging.Logger) -> str:
    """transformers, or vllm where CUDA and vllm are present (auto), saying why."""
    import torch

    cuda, vllm = torch.cuda.is_available(), importlib.util.find_spec("vllm") is not None
    if requested == "transformers":
        choice, why = "transformers", "as asked"
    elif cuda and vllm:
        choice, why = "vllm", "CUDA present and vllm installed"
    elif requested == "vllm":
        choice, why = (
            "transformers",
            f"vllm was asked for but {'vllm is not installed' if cuda else 'there is no CUDA GPU'}; falling back",
        )
        log.warning("serve: %s", why)
    else:
        choice, why = (
            "transformers",
            "no CUDA GPU" if not cuda else "vllm is not installed (pip install 'opensem[gpu]')",
        )
    log.info("serve: backend %s (%s)", choice, why)
    return choice


def adapter_rank(folder: Path) -> int:
    """An adapter's LoRA rank, from its adapter_config.json (0 when it names none)."""
    import json

    return int(
        json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("r") or 0
    )


def make_engine(
    backend: str, model_path: str, config: ServeConfig, log: logging.Logger, lora_rank: int = 0
) -> Any:
    """The engine for backend (transformers or vLLM) over a base model."""
    if backend == "vllm":
        from opensem.serving.vllm_engine import VllmEngine

        return VllmEngine(model_path, config, log, lora_rank)
    from opensem.serving.engine import TransformersEngine

    return TransformersEngine(
        model_path, config.max_batch_size, config.max_queue, config.batch_wait_ms / 1000, log
    )


def _retriever(release: Release) -> Any:
    """The release's knowledge base, its embedder loaded now (not on the first question)."""
    if release.knowledge is None:
        return None
    import yaml

    from opensem.knowledge.retriever import release_retriever

    manifest_file = release.knowledge.parent / "manifest.yaml"
    manifest = (
        yaml.safe_load(manifest_file.read_text(encoding="utf-8")) if manifest_file.is_file() else {}
    )
    retriever = release_retriever(release.knowledge, manifest or {})
    retriever.encode(["warm up"])
    return retriever
