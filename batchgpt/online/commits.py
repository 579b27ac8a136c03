"""Answers committed in small groups: a worker waits until its answer is durable before it takes
another request, and answers arriving within COMMIT_WINDOW_S share one commit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

from batchgpt.errors import StateError, store_write_error
from batchgpt.store import Store

COMMIT_WINDOW_S = 0.002  # answers arriving this close together share a commit (one alone costs ~13 us)


class Commits:
    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, failed: Callable[[str], None]):
        self.store = store
        self.sending = 0  # attempts whose answer is awaited
        self._loop = loop
        self._failed = failed  # told why, when the store cannot keep an answer: the run stops
        self._uncommitted: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None  # the commit due within COMMIT_WINDOW_S

    async def committed(self) -> None:
        """Wait until this worker's answer is committed. Answers written within COMMIT_WINDOW_S
        share one commit; a worker takes no new request before its answer is durable, so a
        killed run re-pays at most one request per worker. With no answer awaited, none can join
        the commit: it is made at once, as waiting would only idle."""
        future = self._loop.create_future()
        self._uncommitted.append(future)
        if self.sending:
            self.soon()
        else:
            self.now()
        await future

    def soon(self) -> None:
        """Commit within COMMIT_WINDOW_S. Every write is followed by this, so no transaction stays
        open longer: other runs sharing the store (other jobs) wait for it only that long."""
        if self._timer is None:
            self._timer = self._loop.call_later(COMMIT_WINDOW_S, self.now)

    def now(self) -> None:
        waiting, self._uncommitted = self._uncommitted, []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        failure: StateError | None = None
        try:
            self.store.commit()
        except sqlite3.Error as exc:  # a full disk: the run cannot keep its answers, so it ends
            failure = store_write_error(self.store.directory, exc)
            self._failed(str(failure))
        for future in waiting:
            if future.done():  # a worker cancelled by a stop no longer waits
                continue
            if failure is None:
                future.set_result(None)
            else:
                future.set_exception(failure)  # the workers waiting end the run with it
