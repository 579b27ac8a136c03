"""The retry policy: which failures are transient, when the server says to come back, how long to
back off, and which failures stop the run. Every HTTP call batchgpt makes goes through it: the
online engine's attempts (runner.py), the Batch API's files and batches calls, and the billing
routes `batchgpt balance` reads (balance.py).

The policy, as openai-python's _base_client keeps it:
- Transient (worth another attempt): no answer at all (a timeout, a reset or refused connection),
  an answer that cannot be read (malformed), and HTTP 408, 409, 429 and 5xx. Not transient: every
  other status (400, 401, 403, 404, 422 ...) and a 429 `insufficient_quota`, which only the user
  can cure. `x-should-retry: true|false` from the server overrides the status.
- When: `retry-after-ms`, else `retry-after` (seconds, or an HTTP date), else, for a limit the
  `x-ratelimit-remaining-*` headers say is used up, its `x-ratelimit-reset-*` refill wait
  (ratelimits.py). A server-told wait is capped (ServerWait): never longer than the job's
  `limits.patience` (after which a limit that refuses everything fails its items anyway), nor
  than MAX_SERVER_DELAY; the run reports a capped wait (online/paceshow.py).
- Otherwise exponential backoff: 0.5 s, 1 s, 2 s ... up to BACKOFF_CAP, less up to a quarter at
  random; and (`spaced`) at least twice the last gap between the request's failure and its next
  attempt, so that a long wait for a turn (a pace, a window cut by timeouts) cannot hide the
  backoff and make a server see attempts at a constant interval.
- A 401 (the key) and an empty quota stop the run: nothing else would get through.
- Waiting is not failing: a rate-limit 429, and a 503 that says when to come back, use up none of
  `max_retries` (the pacer slows down for them; the engine gives up only after its patience).

Pure functions of a failure, the attempts so far and a random draw: no I/O and no clock (an HTTP
date is read against the `now` passed in), so every rule is tested directly. `retrying` runs the
loop for a one-off call with an injected sleep. What headers say about a limit's pace is pacing.py's.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .ratelimits import number, refill_wait
from .records import Failure
from .words import count

log = logging.getLogger(__name__)

BACKOFF_BASE = 0.5  # seconds before the first retry
BACKOFF_CAP = 20.0  # exponential growth stops here
MAX_SERVER_DELAY = 300.0  # a longer retry-after is capped, not obeyed for hours
CALL_RETRIES = 2  # for a one-off call (`retrying`), as openai-python's DEFAULT_MAX_RETRIES

T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    retry: bool
    delay: float = 0.0  # seconds before this request's next attempt
    counts: bool = True  # the attempt used up one of max_retries
    stop_run: str | None = None  # why no further request should start
    exhausted: bool = False  # worth another try, but max_retries are used up
    rule: str = ""  # which rule decided, for the log
    told: ServerWait | None = None  # the server said when (delay is its wait, capped); None: a backoff


@dataclass(frozen=True)
class ServerWait:
    """A wait a server asked for, and how much of it is waited."""

    asked: float  # seconds, as the header says (0 for a moment already past)
    header: str  # the header that said so
    seconds: float  # what is waited: `asked`, capped

    @property
    def capped(self) -> bool:
        return self.seconds < self.asked


def wait_cap(patience: float) -> float:
    """The longest server-told wait a job obeys: its patience, and never more than MAX_SERVER_DELAY."""
    return min(patience, MAX_SERVER_DELAY)


def capped(asked: float, header: str, cap: float = MAX_SERVER_DELAY) -> ServerWait:
    asked = max(asked, 0.0)
    return ServerWait(asked, header, min(asked, cap))


def decide(
    failure: Failure,
    tries: int,
    retries_used: int,
    max_retries: int,
    draw: float,
    now: float | None = None,
    cap: float = MAX_SERVER_DELAY,
) -> Verdict:
    """`tries` counts every attempt so far, this one included (it sets the backoff);
    `retries_used` those before this one that used up a retry. `draw` is uniform in [0, 1); `now`
    (epoch seconds, the wall clock when None) reads a retry-after given as an HTTP date; `cap` is
    the longest server-told wait obeyed (wait_cap)."""
    reason = stops_run(failure)
    if reason is not None:
        return Verdict(False, stop_run=reason, rule="stops the run")
    if not transient(failure):
        return Verdict(False, rule="not transient")
    told = server_wait(failure.headers or {}, now, cap)
    delay = told.seconds if told is not None else backoff(tries, draw)
    if failure.rate_limited or (failure.overloaded and told is not None):
        return Verdict(True, delay, counts=False, rule="waiting for the limit", told=told)
    if retries_used >= max_retries:
        return Verdict(False, delay, exhausted=True, rule=f"{count(max_retries, 'retry')} used", told=told)
    return Verdict(True, delay, rule="transient", told=told)


def transient(failure: Failure) -> bool:
    """Whether another attempt may succeed: the one classification of failures (see the module)."""
    should = (failure.headers or {}).get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    # the failure's own kind and status (records.Failure.transient, which a plain rerun goes by),
    # less an empty quota: a rerun may find it refilled, another attempt now will not
    return failure.transient and not failure.out_of_quota


def stops_run(failure: Failure) -> str | None:
    """Why no further request should start after this failure (a refused key, an empty quota)."""
    if failure.status == 401:
        return f"authentication failed ({failure.describe()}): check the API key"
    if failure.cause == "certificate":  # every request would meet the same certificate
        return f"the server's certificate is not trusted ({failure.describe()})"
    if failure.out_of_quota:
        return f"the account is out of quota ({failure.describe()})"
    return None


def backoff(attempt: int, draw: float) -> float:
    """0.5 s, 1 s, 2 s ... up to 20 s, less up to a quarter at random so that retries spread out."""
    return _jittered(min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_CAP), draw)


def spaced(delay: float, gap: float | None, draw: float) -> float:
    """A backoff `delay`, or more when the last `gap` (from the request's previous failure to its
    next attempt) was longer than its backoff: twice that gap, up to BACKOFF_CAP, less up to a
    quarter at random. The gap holds the wait for a turn too (a pace, or a window that timeouts
    cut to one request at a time), which would otherwise swallow a short backoff and space the
    attempts evenly."""
    if gap is None:
        return delay
    return max(delay, _jittered(min(2 * gap, BACKOFF_CAP), draw))


def _jittered(seconds: float, draw: float) -> float:
    return float(seconds * (1 - 0.25 * draw))


def server_delay(headers: Mapping[str, str], now: float | None = None, cap: float = MAX_SERVER_DELAY) -> float | None:
    """The seconds of server_wait, or None."""
    told = server_wait(headers, now, cap)
    return None if told is None else told.seconds


def server_wait(
    headers: Mapping[str, str], now: float | None = None, cap: float = MAX_SERVER_DELAY
) -> ServerWait | None:
    """The wait the server asked for, capped at `cap`: retry-after-ms, else retry-after as seconds
    or an HTTP date, else the refill wait of a limit x-ratelimit-remaining-* says is used up; None
    if none says."""
    value = headers.get("retry-after-ms")
    if value is not None:
        millis = number(value)
        if millis is not None:
            return capped(millis / 1000, "retry-after-ms", cap)
        log.debug("ignored retry-after-ms %r: not a number", value[:40])
    value = headers.get("retry-after")
    if value is not None:
        seconds = _seconds_or_date(value, time.time() if now is None else now)
        if seconds is not None:
            return capped(seconds, "retry-after", cap)
        log.debug("ignored retry-after %r: neither seconds nor a date", value[:40])
    return refill(headers, cap)


def refill(headers: Mapping[str, str], cap: float = MAX_SERVER_DELAY) -> ServerWait | None:
    """The refill wait of the limit x-ratelimit-remaining-* says is used up (ratelimits.refill_wait),
    capped; None when no limit is used up."""
    waits = [(refill_wait(headers, what) or 0.0, f"x-ratelimit-reset-{what}") for what in ("requests", "tokens")]
    seconds, header = max(waits)
    return capped(seconds, header, cap) if seconds > 0 else None


def _seconds_or_date(value: str, now: float) -> float | None:
    seconds = number(value)
    if seconds is not None:
        return seconds
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    except (ValueError, TypeError):
        return None


async def retrying(
    attempt: Callable[[], Awaitable[T | Failure]],
    what: str,
    *,
    max_retries: int = CALL_RETRIES,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    draw: Callable[[], float] = random.random,
    retry: bool = True,
    on_retry: Callable[[Failure, Verdict], None] | None = None,
) -> T | Failure:
    """A one-off call (not paced: the Batch API's routes, the billing routes) made until it
    succeeds, fails for good, or has used `max_retries`; `what` names it in the log. With
    `retry` False it is made once (a call that may have taken effect though it failed).
    `on_retry` hears of each failure that is retried (a caller's counters)."""
    import asyncio

    wait = sleep or asyncio.sleep
    tries = retries_used = 0
    while True:
        tries += 1
        outcome = await attempt()
        if not isinstance(outcome, Failure):
            return outcome
        verdict = decide(outcome, tries, retries_used, max_retries, draw())
        # a one-off call has no pacer or patience to end a wait for a limit: every retry counts
        if not retry or not verdict.retry or retries_used >= max_retries:
            log.debug("%s: not retried (%s) after %s", what, verdict.rule, outcome.describe())
            return outcome
        retries_used += 1
        if on_retry is not None:
            on_retry(outcome, verdict)
        log.debug("%s: retrying in %.2fs (%s) after %s", what, verdict.delay, verdict.rule, outcome.describe())
        await wait(verdict.delay)
