"""The event loop everything async runs on: uvloop's where it is installed (Linux, macOS), else
asyncio's own; and a garbage collector that stays out of its way while it runs."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# A run allocates a few dozen short-lived containers per request. At CPython's default threshold
# (700) the young generation is collected every few requests, and each full collection walks every
# object the job, the imports and the store's caches hold: 12% of a run's CPU. Collected 70 times
# less often, cycles are still freed, in steps of a few MB.
YOUNG_THRESHOLD = 50_000


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), on uvloop when it can be imported."""
    with _few_collections():
        try:
            import uvloop
        except ImportError:
            return asyncio.run(main)
        return uvloop.run(main)


@contextmanager
def _few_collections() -> Iterator[None]:
    """The objects alive now (modules, the job) are frozen out of every collection, and the young
    generation is collected at YOUNG_THRESHOLD allocations; both undone on the way out."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(before[0], YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
