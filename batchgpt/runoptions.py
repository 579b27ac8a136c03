"""What a caller says about one run beyond its job: where its state lives, whether to start afresh,
how it reports, and a handle to stop it.

The handle (`Stop`) is how whoever owns the process asks a run to end: the command line's signal
handlers (cli/loop.py), or a notebook, a web app or a thread of its own. The run, not the caller,
decides what stopping means (no new request starts; those in flight get a grace; a hard stop
ends them at once), so the library never installs a signal handler itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GRACE_S = 10.0  # after a stop is asked for, how long requests in flight may take to finish


class Stop:
    """Ask a run to stop, from any thread. `request` stops new work and gives work in flight
    GRACE_S to finish; `now` (or a second request) ends it at once, without writing the results.
    One handle serves one run at a time; a run started with a stopped handle stops at once."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.signal: int | None = None  # the signal that asked, for the exit code (128 + it)
        self.hard = False
        self._lock = threading.Lock()
        self._listeners: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []

    def request(self, reason: str = "stopped by the caller", signal: int | None = None) -> None:
        """Stop gracefully; asked a second time, stop at once."""
        with self._lock:
            if self.reason is not None:
                self.hard = True
            else:
                self.reason, self.signal = reason, signal
            listeners = list(self._listeners)
        _tell(listeners)

    def now(self, reason: str = "stopped by the caller") -> None:
        """Stop at once: work in flight is cancelled, the results are not written."""
        with self._lock:
            self.reason = self.reason or reason
            self.hard = True
            listeners = list(self._listeners)
        _tell(listeners)

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` on the running loop at each request (at once if one came already);
        returns the function that stops listening."""
        entry = (asyncio.get_running_loop(), callback)
        with self._lock:
            self._listeners.append(entry)
            asked = self.reason is not None
        if asked:
            _tell([entry])

        def forget() -> None:
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)

        return forget


def _tell(listeners: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]]) -> None:
    for loop, callback in listeners:
        if not loop.is_closed():
            loop.call_soon_threadsafe(callback)


@dataclass(frozen=True)
class RunOptions:
    state_dir: Path | None = None
    fresh: bool = False  # forget the job's earlier answers (under the job's lock, never under another run)
    retry_failed: bool = False
    progress: bool | None = None  # None: a bar when stderr is a terminal
    log_format: str = "text"
    wait: bool = False  # batch mode: poll until every batch has ended, then write the results
    poll: float = 60.0  # batch mode: seconds between polls while waiting
