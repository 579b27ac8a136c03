"""Rate limits shared by every request of a run: requests and tokens per minute, and pauses.

The per-minute limits are leaky buckets (aiolimiter) holding about one second of requests and six
seconds of tokens, so a run starts at its steady pace instead of spending a minute's allowance in
a burst. A 429, or an `x-ratelimit-remaining-*` header at zero, pauses every request until one
more fits, since the limit belongs to the account, not to the request that hit it.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable, Mapping

from aiolimiter import AsyncLimiter

from .retry import refill_wait

TOKEN_WINDOW = 6.0  # seconds of tokens the bucket holds


class Throttle:
    def __init__(self, rpm: float | None, tpm: float | None, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._paused_until = 0.0
        self._requests = _bucket(rpm, 1.0) if rpm else None
        self._tokens = _bucket(tpm, TOKEN_WINDOW) if tpm else None

    @property
    def counts_tokens(self) -> bool:
        return self._tokens is not None

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for any pause, then for room in both buckets. A request bigger than the token bucket
        takes the whole bucket: it waits for a full window instead of never starting."""
        while (wait := self._paused_until - self._clock()) > 0:
            await asyncio.sleep(wait)
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None and tokens > 0:
            await self._tokens.acquire(min(tokens, self._tokens.max_rate))

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Pause when the server says a limit is used up, until one more request fits."""
        for what in ("requests", "tokens"):
            wait = refill_wait(headers, what)
            if wait:
                self.pause(wait)


def _bucket(per_minute: float, window: float) -> AsyncLimiter:
    """A bucket refilled at per_minute/60 a second that holds `window` seconds' worth (at least one)."""
    capacity = max(1.0, per_minute / 60.0 * window)
    return AsyncLimiter(capacity, capacity * 60.0 / per_minute)
