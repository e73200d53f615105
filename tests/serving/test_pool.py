"""The pool's swap: a release being used is retired only when its last request has finished."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from opensem.serving.config import ServeConfig
from opensem.serving.pool import ModelPool
from opensem.serving.releases import resolve


def wait_until(condition, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_swap_keeps_the_old_release_until_its_requests_end(
    releases: dict[str, Path], tmp_path: Path
) -> None:
    pool = ModelPool(ServeConfig(insecure_no_auth=True), logging.getLogger("test"))
    try:
        old = pool.add(resolve(f"expert={releases['alpha']}", tmp_path))
        held = pool.acquire("expert")
        assert held is old and old.in_flight == 1
        new = pool.add(resolve(f"expert={releases['beta']}", tmp_path))
        assert (
            pool.acquire("expert") is new and new.engine is old.engine
        )  # new requests go to the new release
        pool.release(new)
        time.sleep(0.3)
        assert (
            old.retired and old.adapter in old.engine.model.peft_config
        )  # still loaded: a request uses it
        pool.release(held)
        assert wait_until(lambda: old.adapter not in old.engine.model.peft_config)
        assert new.adapter in new.engine.model.peft_config
    finally:
        pool.close()


def test_a_whole_model_release_gets_its_own_engine_and_is_closed_when_swapped(
    releases: dict[str, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    pool = ModelPool(ServeConfig(insecure_no_auth=True), logging.getLogger("test"))
    try:
        adapter = pool.add(resolve(f"adapter={releases['alpha']}", tmp_path))
        whole = pool.add(resolve(f"whole={tiny_model_dir}", tmp_path))
        assert (
            whole.adapter is None
            and whole.engine is not adapter.engine
            and whole.release.kind == "model"
        )
        again = pool.add(
            resolve(f"whole={tiny_model_dir}", tmp_path)
        )  # same folder: the engine is shared, not reloaded
        assert again.engine is whole.engine and whole.engine.running
    finally:
        pool.close()


def test_a_vllm_engine_is_sized_by_the_largest_adapter_of_its_base(tmp_path) -> None:
    import logging

    from opensem.errors import ServeError
    from opensem.serving.config import ServeConfig
    from opensem.serving.pool import ModelPool, adapter_rank
    from opensem.serving.releases import Release
    from opensem.serving.vllm_engine import vllm_lora_rank

    releases = []
    for name, rank in (("a", 8), ("b", 48), ("c", 4)):
        folder = tmp_path / name / "adapter"
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text(f'{{"r": {rank}}}')
        releases.append(
            Release(
                name,
                name,
                None,
                None,
                "adapter",
                folder,
                "base-one" if name != "c" else "base-two",
                name,
            )
        )
    pool = ModelPool(ServeConfig(port=0, backend="transformers"), logging.getLogger("test"))
    pool.expect(releases)
    assert sorted(pool.lora_ranks.values()) == [4, 48] and adapter_rank(releases[1].artifact) == 48
    assert [vllm_lora_rank(r) for r in (1, 8, 48, 300, 512)] == [8, 8, 64, 320, 512]
    with pytest.raises(ServeError, match="up to 512"):
        vllm_lora_rank(1024)
