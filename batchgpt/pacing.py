"""Pacing: a run's pacers, one per rate limit. A rate limit belongs to an endpoint, a key and a model
(OpenAI's limits are per model); each has a Pacer (pacer.py), which learns its pace from the
server's headers (ratelimits.py) and refusals as the run goes.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .pacer import Pace, Pacer, Stopped, Ticket
from .records import shown_url

if TYPE_CHECKING:
    from .shared import SharedLimit

__all__ = ["Pace", "Pacer", "Pacing", "Stopped", "Ticket", "limit_id"]


class Pacing:
    """A run's pacers, one per (endpoint, key, model)."""

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        concurrency: int,
        patience: float,
        clock: Callable[[], float] = time.monotonic,
        shared: Callable[[str], SharedLimit] | None = None,
        draw: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        self._settings = (rpm, tpm, concurrency, patience)
        self._clock = clock
        self._draw = draw
        self._sleep = sleep
        self._shared = shared
        self._pacers: dict[tuple[str, str, str], Pacer] = {}
        self._closed = False

    def pacer(self, endpoint: str, key: str | None, model: str) -> Pacer:
        identity = (endpoint, limit_id(endpoint, key), model)
        pacer = self._pacers.get(identity)
        if pacer is None:
            rpm, tpm, concurrency, patience = self._settings
            shared = self._shared(f"{identity[1]}:{model}") if self._shared else None
            name = f"{model} at {shown_url(endpoint)}" if model else shown_url(endpoint)
            pacer = self._pacers[identity] = Pacer(
                name, rpm, tpm, concurrency, patience, self._clock, shared, self._draw, self._sleep
            )
            if self._closed:  # a run that stopped starts nothing, on a limit it had not used yet neither
                pacer.close()
        return pacer

    def close(self) -> None:
        self._closed = True
        for pacer in self._pacers.values():
            pacer.close()

    def paces(self) -> list[Pace]:
        return [pacer.pace() for pacer in self._pacers.values()]


@functools.lru_cache(maxsize=64)
def limit_id(endpoint: str, key: str | None) -> str:
    """Names an (endpoint, key) pair without revealing the key: processes that share one share this."""
    return hashlib.sha256(f"{endpoint}\0{key or ''}".encode()).hexdigest()[:16]
