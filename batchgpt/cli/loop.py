"""The command line's process: the event loop (uvloop's where it is installed, else asyncio's
own), a garbage collector that stays out of its way while it runs, and SIGINT and SIGTERM asking
the run to stop. The library never does any of this: it runs on whatever loop its caller has
(lifecycle.arun_job, api.arun), and is stopped through a runoptions.Stop handle."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from batchgpt.runoptions import Stop

from . import interrupts

T = TypeVar("T")

# A run allocates a few dozen short-lived containers per request. At CPython's default threshold
# (700) the young generation is collected every few requests, and each full collection walks every
# object the job, the imports and the store's caches hold: 12% of a run's CPU. Collected 70 times
# less often, cycles are still freed, in steps of a few MB.
YOUNG_THRESHOLD = 50_000
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), on uvloop when it can be imported."""
    with _few_collections():
        try:
            import uvloop
        except ImportError:
            return asyncio.run(main)
        return uvloop.run(main)


def run_stoppable(start: Callable[[Stop], Coroutine[Any, Any, T]]) -> T:
    """run(start(stop)) with SIGINT and SIGTERM asking the run to stop through `stop`: the first
    stops new requests and gives those in flight a grace, the second stops at once. Once the run
    has ended (and recorded how), they are ignored until the loop is closed: a Ctrl-C while it
    shuts down raised KeyboardInterrupt inside that, with a traceback (issue 24, item 17)."""
    stop = Stop()
    handled = SIGNALS if threading.current_thread() is threading.main_thread() else ()
    before = {number: signal.getsignal(number) for number in handled}

    async def main() -> T:
        loop = asyncio.get_running_loop()
        for number in handled:
            loop.add_signal_handler(number, _asked, stop, number)
        try:
            return await start(stop)
        finally:
            for number in handled:
                loop.remove_signal_handler(number)
                signal.signal(number, signal.SIG_IGN)

    try:
        return run(main())
    finally:
        # In the command line's own process the run's end is the process's: its interrupts stay
        # ignored (interrupts.py). Anywhere else (a test's), the handlers are put back as found.
        cli = before.get(signal.SIGINT) is interrupts.interrupt_once
        for number, handler in before.items():
            signal.signal(number, signal.SIG_IGN if cli else signal.SIG_DFL if handler is None else handler)


def _asked(stop: Stop, number: signal.Signals) -> None:
    stop.request(f"interrupted by {number.name}", int(number))


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
