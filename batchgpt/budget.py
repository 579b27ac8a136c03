"""The spending limit of a run: reserve each request's worst case before it starts, settle with
the real cost when its answer arrives.

Invariant: spent + reserved <= limit at all times, and a request's real cost never exceeds its
reservation, so the real spend never exceeds the limit. An attempt that may have been billed
without saying so (a timeout, a cut connection, an unreadable answer) is settled at its worst
case, and its retry reserves again. A request that does not fit waits while requests in flight
may still free room; only when it cannot fit with nothing in flight is the budget reached. An
answer that says not what it used (no `usage`, as some servers answer) is billed all the same:
it is charged at its worst case (`unmetered`), so the budget sees it and the report's cost is
never below the bill.
"""

from __future__ import annotations

import asyncio
from typing import Any

UNMETERED = "the answer carried no usage: charged at its worst case (its prompt and max_tokens)"


def unmetered(worst_usd: float | None, details: Any) -> tuple[float | None, Any]:
    """The cost of an answer without usage, its worst case (None when unknown: no price), and its
    row's details with a note saying so."""
    if worst_usd is None:
        return None, details
    note = {"cost": UNMETERED}
    if details is None:
        return worst_usd, note
    return worst_usd, {**details, **note} if isinstance(details, dict) else {"details": details, **note}


class Budget:
    def __init__(self, limit_usd: float):
        self.limit = limit_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.holding = 0  # reservations not yet settled: counted, since sums of floats drift from zero
        self._settled: asyncio.Event | None = None  # set at the next settle, for requests waiting for room
        self._closed = False

    def reserve(self, worst_usd: float) -> bool:
        if self.spent + self.reserved + worst_usd > self.limit:
            return False
        self.reserved += worst_usd
        self.holding += 1
        return True

    async def hold(self, worst_usd: float) -> bool:
        """Reserve `worst_usd`, waiting for requests in flight to settle while they may free room.
        False once it cannot fit with nothing in flight, or the run stopped."""
        while not self._closed and not self.reserve(worst_usd):
            if self.holding == 0:
                return False
            if self._settled is None:
                self._settled = asyncio.Event()
            await self._settled.wait()
        return not self._closed

    def settle(self, worst_usd: float, actual_usd: float | None) -> None:
        self.holding -= 1
        self.reserved = max(0.0, self.reserved - worst_usd) if self.holding else 0.0
        self.spent += actual_usd or 0.0
        self._wake()

    def close(self) -> None:
        """The run stopped: requests waiting for room give up."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    def __repr__(self) -> str:
        return f"Budget(limit=${self.limit:.4f}, spent=${self.spent:.4f}, reserved=${self.reserved:.4f})"
