"""Work over many inputs on every core, results in input order, with a bounded number in flight.

Large corpora are parsed in worker processes (the GIL keeps threads on one core) while the stage
writes results as they arrive, so memory holds a window of results, never the corpus. Workers
start from a fork server: a stage may run beside threads (build -j) or after torch started its
own, which a plain fork would copy mid-flight.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

from opensem.core.digests import usable_cores

PARALLEL_BYTES = (
    32 << 20
)  # input this large is worth worker processes; less is done in-process, as starting them costs more
Item = TypeVar("Item")
Result = TypeVar("Result")


def workers_for(size: int) -> int:
    """Processes worth using on input of size bytes: every core for a large input, else this one."""
    return usable_cores() if size >= PARALLEL_BYTES else 1


def ordered_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int | None = None,
    window: int = 32,
) -> Iterator[Result]:
    """function over items, in order: in this process for one worker, else in a process pool with
    at most window items submitted ahead of the one being yielded (function must be picklable)."""
    workers = usable_cores() if workers is None else workers
    if workers <= 1:
        yield from map(function, items)
        return
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("forkserver")
    )
    pending: deque[Future[Result]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
