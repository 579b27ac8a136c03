"""Retry policy: which failures deserve another attempt, how long to wait, and which stop the run.

Pure functions of a failure, an attempt number and a random draw: no I/O and no clock, so every
rule is tested directly. Modelled on openai-python's _base_client: 408, 409, 429 and 5xx are
retried, `x-should-retry` overrides that, and `retry-after-ms` is read before `retry-after`.
"""
from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass
from typing import Mapping

RETRY_STATUSES = frozenset({408, 409, 429})
BACKOFF_BASE = 0.5  # seconds before the first retry
BACKOFF_CAP = 20.0  # exponential growth stops here
MAX_SERVER_DELAY = 300.0  # a longer retry-after is capped, not obeyed for hours
MAX_RESET_WAIT = 60.0  # a 429 without retry-after waits for its limit to refill, at most this long
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt. `status` is None when no HTTP answer arrived."""

    kind: str  # http | timeout | connection | malformed
    message: str
    status: int | None = None
    code: str | None = None
    type: str | None = None
    headers: Mapping[str, str] | None = None

    def describe(self) -> str:
        if self.status is None:
            return f"{self.kind}: {self.message}"
        code = f" {self.code}" if self.code else ""
        return f"HTTP {self.status}{code}: {self.message}"


@dataclass(frozen=True)
class Verdict:
    retry: bool
    delay: float = 0.0  # seconds before this request's next attempt
    pause_run: float = 0.0  # seconds every request should wait (a rate limit is shared)
    stop_run: str | None = None  # why no further request should start


def decide(failure: Failure, attempt: int, max_retries: int, draw: float) -> Verdict:
    """`attempt` counts from 1; `draw` is uniform in [0, 1) and jitters the backoff."""
    if failure.status == 401:
        return Verdict(False, stop_run=f"authentication failed ({failure.describe()}): check the API key")
    if failure.status == 429 and "insufficient_quota" in (failure.code, failure.type):
        return Verdict(False, stop_run=f"the account is out of quota ({failure.describe()})")
    if not _retryable(failure):
        return Verdict(False)
    headers = failure.headers or {}
    server = server_delay(headers)
    delay = server if server is not None else backoff(attempt, draw)
    if failure.status == 429:
        if server is None:
            waits = [w for w in (refill_wait(headers, "requests"), refill_wait(headers, "tokens")) if w]
            delay = max(delay, min(max(waits), MAX_RESET_WAIT)) if waits else delay
        return Verdict(attempt <= max_retries, delay, pause_run=delay)
    return Verdict(attempt <= max_retries, delay)


def _retryable(failure: Failure) -> bool:
    should = (failure.headers or {}).get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    if failure.status is None or failure.kind == "malformed":
        return True
    return failure.status in RETRY_STATUSES or failure.status >= 500


def backoff(attempt: int, draw: float) -> float:
    """0.5 s, 1 s, 2 s ... up to 20 s, less up to a quarter at random so that retries spread out."""
    return min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_CAP) * (1 - 0.25 * draw)


def server_delay(headers: Mapping[str, str]) -> float | None:
    """The wait the server asked for: retry-after-ms, else retry-after as seconds or an HTTP date."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return _capped(float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return _capped(float(value))
    except ValueError:
        pass
    try:
        return _capped(email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (ValueError, TypeError):
        return None


def refill_wait(headers: Mapping[str, str], what: str) -> float | None:
    """How long until one more request fits a limit the headers say is used up (None when they
    do not say so). x-ratelimit-reset-* is when the limit is whole again, but one request needs
    only part of it back: reset / limit for requests (the bucket refills evenly; the whole reset
    without a limit header), and at most a second's worth for tokens."""
    remaining = headers.get(f"x-ratelimit-remaining-{what}")
    if remaining is None or remaining.strip() not in ("0", "0.0"):
        return None
    reset = reset_delay(headers, what) or 1.0
    if what == "tokens":
        return min(reset, 1.0)
    try:
        limit = float(headers.get(f"x-ratelimit-limit-{what}") or 0)
    except ValueError:
        limit = 0.0
    return reset / limit if limit > 0 else reset


def reset_delay(headers: Mapping[str, str], what: str) -> float | None:
    """Seconds until x-ratelimit-reset-{requests,tokens} ('1s', '6m0s', '12ms')."""
    value = headers.get(f"x-ratelimit-reset-{what}")
    return parse_duration(value) if value else None


def parse_duration(value: str) -> float | None:
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _capped(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_SERVER_DELAY)
