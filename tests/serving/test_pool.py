"""The pool's swap: a release being used is retired only when its last request has finished."""

from __future__ import annotations

import logging
import time
from pathlib import Path

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


def test_swap_keeps_the_old_release_until_its_requests_end(releases: dict[str, Path], tmp_path: Path) -> None:
    pool = ModelPool(ServeConfig(insecure_no_auth=True), logging.getLogger("test"))
    try:
        old = pool.add(resolve(f"expert={releases['alpha']}", tmp_path))
        held = pool.acquire("expert")
        assert held is old and old.in_flight == 1
        new = pool.add(resolve(f"expert={releases['beta']}", tmp_path))
        assert pool.acquire("expert") is new and new.engine is old.engine  # new requests go to the new release
        pool.release(new)
        time.sleep(0.3)
        assert old.retired and old.adapter in old.engine.model.peft_config  # still loaded: a request uses it
        pool.release(held)
        assert wait_until(lambda: old.adapter not in old.engine.model.peft_config)
        assert new.adapter in new.engine.model.peft_config
    finally:
        pool.close()


def test_a_whole_model_release_gets_its_own_engine_and_is_closed_when_swapped(releases: dict[str, Path], tiny_model_dir: Path, tmp_path: Path) -> None:
    pool = ModelPool(ServeConfig(insecure_no_auth=True), logging.getLogger("test"))
    try:
        adapter = pool.add(resolve(f"adapter={releases['alpha']}", tmp_path))
        whole = pool.add(resolve(f"whole={tiny_model_dir}", tmp_path))
        assert whole.adapter is None and whole.engine is not adapter.engine and whole.release.kind == "model"
        again = pool.add(resolve(f"whole={tiny_model_dir}", tmp_path))  # same folder: the engine is shared, not reloaded
        assert again.engine is whole.engine and whole.engine.running
    finally:
        pool.close()
