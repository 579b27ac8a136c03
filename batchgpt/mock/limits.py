"""The mock server's rate limits: a token bucket per model and per limit, as the API keeps them,
and the `x-ratelimit-*` headers, 429 bodies and `retry-after(-ms)` they answer with.

Pure: no transport, and the clock is injected so the tests can move time by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import error_body

Clock = Callable[[], float]


def duration(seconds: float) -> str:
    """The API's reset format: '12ms', '1s', '1.5s', '6m0s'."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest, 3):g}s"


class Bucket:
    """A token bucket like the API's: full at start, refilled continuously at `per_minute`, holding
    `window` seconds of it (the API's per-minute figure, enforced over a shorter period)."""

    def __init__(self, per_minute: float, window: float = 60.0, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        # at least one whole request fits, however short the window
        self.capacity = max(1.0, per_minute * window / 60.0)
        self.level = self.capacity
        self.rate = per_minute / 60.0
        self._clock = clock
        self._stamp = clock()

    def refill(self) -> None:
        """Add what has dripped in since the last look, up to the capacity."""
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, amount: float) -> bool:
        """Take `amount` if the bucket holds it; a refused request takes nothing."""
        self.refill()
        if self.level >= amount:
            self.level -= amount
            return True
        return False

    def reset_in(self) -> float:
        """Seconds until the bucket is full again (as of the last refill)."""
        return (self.capacity - self.level) / self.rate

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` fits (a request larger than the bucket waits for a full one)."""
        return max(0.0, (min(amount, self.capacity) - self.level) / self.rate)


class LimitSettings(Protocol):
    """The settings the limiter reads on every request (the server's Config has them)."""

    rpm: float | None
    tpm: float | None
    window: float
    limit_headers: bool
    retry_after: bool


@dataclass(frozen=True)
class Verdict:
    """What the limits say of one request: the `x-ratelimit-*` headers to send and, when it is
    refused, the 429's error body and the `retry-after(-ms)` headers to add to them."""

    headers: dict[str, str]
    refusal: dict[str, Any] | None = None
    retry: dict[str, str] = field(default_factory=dict)


class RateLimiter:
    """Requests and tokens per minute, per model as the API's limits are."""

    def __init__(self, settings: LimitSettings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}  # (model, requests|tokens)

    def check(self, model: str, cost: int) -> Verdict:
        """Take one request and `cost` tokens from `model`'s buckets. Every bucket is charged even
        when an earlier one refuses, and the first refusal is the one reported."""
        headers: dict[str, str] = {}
        refused: tuple[dict[str, Any], dict[str, str]] | None = None  # (error body, retry headers)
        for name, per_minute, amount in (("requests", self.settings.rpm, 1), ("tokens", self.settings.tpm, cost)):
            if not per_minute:
                continue
            bucket = self.bucket(model, name, per_minute)
            ok = bucket.take(amount)
            if self.settings.limit_headers:
                headers.update(limit_headers(name, bucket))
            if not ok and refused is None:
                refused = self._refusal(model, name, bucket, amount)
        return Verdict(headers) if refused is None else Verdict(headers, *refused)

    def bucket(self, model: str, name: str, per_minute: float) -> Bucket:
        """`model`'s bucket for `name` (requests or tokens), made full on first use."""
        bucket = self._buckets.get((model, name))
        if bucket is None:
            bucket = self._buckets[(model, name)] = Bucket(per_minute, self.settings.window, self._clock)
        return bucket

    def _refusal(self, model: str, name: str, bucket: Bucket, amount: float) -> tuple[dict[str, Any], dict[str, str]]:
        wait = bucket.wait_for(amount)
        body = error_body(
            f"Rate limit reached for {model} on {name} per min (RPM/TPM): Limit "
            f"{int(bucket.per_minute)}. Please try again in {duration(wait)}.",
            name,
            "rate_limit_exceeded",
        )
        # retry-after is whole seconds, at least 1 (the spec's integer); -ms carries the precision
        retry = {"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(max(1, int(wait * 1000)))}
        return body, retry if self.settings.retry_after else {}


def limit_headers(name: str, bucket: Bucket) -> dict[str, str]:
    """The `x-ratelimit-*-{name}` headers for a bucket, as the API words them."""
    return {
        f"x-ratelimit-limit-{name}": str(int(bucket.per_minute)),
        f"x-ratelimit-remaining-{name}": str(int(bucket.level)),
        f"x-ratelimit-reset-{name}": duration(bucket.reset_in()),
    }
