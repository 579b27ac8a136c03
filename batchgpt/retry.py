"""Retry policy: which failures deserve another attempt, how long to wait, and which stop the run.

Pure functions of a failure, the attempts so far and a random draw: no I/O and no clock, so every
rule is tested directly. Modelled on openai-python's _base_client: 408, 409, 429 and 5xx are
retried, `x-should-retry` overrides that, and `retry-after-ms` is read before `retry-after`.

Waiting is not failing: a rate-limit 429 and a 503 that says when to come back use up none of
`max_retries` (the pacer slows down for them, and the engine gives up on a limit only after its
patience). What the server's headers say about the limit itself is pacing.py's business.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .records import RETRY_STATUSES, Failure
from .words import count

BACKOFF_BASE = 0.5  # seconds before the first retry
BACKOFF_CAP = 20.0  # exponential growth stops here
MAX_SERVER_DELAY = 300.0  # a longer retry-after is capped, not obeyed for hours


@dataclass(frozen=True)
class Verdict:
    retry: bool
    delay: float = 0.0  # seconds before this request's next attempt
    counts: bool = True  # the attempt used up one of max_retries
    stop_run: str | None = None  # why no further request should start
    exhausted: bool = False  # worth another try, but max_retries are used up
    rule: str = ""  # which rule decided, for the log


def decide(failure: Failure, tries: int, retries_used: int, max_retries: int, draw: float) -> Verdict:
    """`tries` counts every attempt so far, this one included (it sets the backoff);
    `retries_used` those before this one that used up a retry. `draw` is uniform in [0, 1)."""
    if failure.status == 401:
        return Verdict(
            False, stop_run=f"authentication failed ({failure.describe()}): check the API key", rule="401 stops the run"
        )
    if failure.out_of_quota:
        return Verdict(
            False,
            stop_run=f"the account is out of quota ({failure.describe()})",
            rule="insufficient_quota stops the run",
        )
    if not _retryable(failure):
        return Verdict(False, rule="not retryable")
    server = server_delay(failure.headers or {})
    delay = server if server is not None else backoff(tries, draw)
    if failure.rate_limited or (failure.overloaded and server is not None):
        return Verdict(True, delay, counts=False, rule="waiting for the limit")
    if retries_used >= max_retries:
        return Verdict(False, delay, exhausted=True, rule=f"{count(max_retries, 'retry')} used")
    return Verdict(True, delay, rule="transient")


def _retryable(failure: Failure) -> bool:
    should = (failure.headers or {}).get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    if failure.status is None or failure.cause == "malformed":
        return True
    return failure.status in RETRY_STATUSES or failure.status >= 500


def backoff(attempt: int, draw: float) -> float:
    """0.5 s, 1 s, 2 s ... up to 20 s, less up to a quarter at random so that retries spread out."""
    return float(min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_CAP) * (1 - 0.25 * draw))


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


def _capped(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_SERVER_DELAY)
