"""A Pacer: when the next request to one rate limit may start, learned from the server as a run goes.

A pacer starts requests one at a time, evenly spaced, at the lowest of:
- what the job says (`rpm`, `tpm`);
- what the server says in its `x-ratelimit-limit-*` headers (a little under it; ratelimits.py
  reads them); and
- while it is backing off, a rate it found by itself (AIMD): a 429 cuts the rate to 0.7 of what
  was being sent, and each success raises it again, quickly up to the last rate known to work
  and slowly (about 5% a second) beyond it, so a run told ten times too much by a server that
  sends no headers converges within seconds and then keeps probing for more.
A 429's `retry-after`, or a header saying a limit is used up, pauses the pacer; after a pause
requests resume at the pace, one at a time, never every worker at once. Such a pause is never
longer than the job's patience (retry.wait_cap), and the first one cut short is kept for the run
to report (`Pace.capped`). Sporadic 429s are not a limit: one that no header backs (none says a
limit is used up) while refusals are under SPORADIC of the last RECENT answers (a shared key, a
noisy relay) neither pauses nor cuts the pace; only the refused request waits. A 503 from
an overloaded server, or a timeout from a slow one, cuts how many requests may be in flight the
same way, and successes let more in again. The first request on
a limit goes alone (for up to PROBE_S), so that its answer's headers set the pace before
anything else is sent.

Time comes from an injected clock, and nothing here does I/O but the optional shared limit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .ratelimits import RATE_HEADERS, ServerLimits, number
from .records import Failure
from .retry import ServerWait, refill, server_wait, wait_cap

if TYPE_CHECKING:
    from .shared import SharedLimit

MARGIN = 0.98  # pace this close to a limit the server states: its window absorbs the network's jitter
BETA = 0.7  # a 429 cuts the rate, and a 503 the requests in flight, to this share
MIN_RATE = 1.0  # requests a second: backing off goes no lower, unless the limit itself is lower
SLOW_START_STEP = 1.0  # requests a second added per success, up to the last rate known to work
PROBE_STEP = 0.05  # ... and beyond it: 5% of the rate per second of successes, at any rate
LATE = 0.01  # a request that starts up to this late keeps its slot: timers firing late cost no pace
PAUSE_JITTER = 0.25  # a pause lasts up to this share longer, at random
WINDOW_STEP = 0.1  # requests in flight added per window of successes after a 503: one per ten round trips
PROBE_S = 2.0  # the first request on a limit goes alone for at most this long, while its headers are awaited
RECENT = 50  # answers over which the share of 429s is taken
SPORADIC = 0.2  # 429s under this share of them are noise (3% at random never get there), not our pace's doing


class Stopped(Exception):
    """The run stopped while a request waited for its turn."""


@dataclass(frozen=True)
class Pace:
    """A pacer's state, for the progress display and the log."""

    name: str
    rate: float | None  # requests a second allowed now; None: no limit known
    token_rate: float | None
    source: str  # what sets the rate: told | headers | backing off | unlimited
    paused_for: float  # seconds until a pause ends (0: not paused)
    in_flight: int
    window: int | None  # requests allowed in flight, when a 503 or a timeout cut it below the concurrency
    capped: ServerWait | None = None  # the first server-told wait this limit cut short


@dataclass(frozen=True)
class Ticket:
    """A started request, handed back to done()."""

    started: float
    on_credit: bool  # it started early, on the server's word that its limit had room (x-ratelimit-remaining)


class Pacer:
    def __init__(
        self,
        name: str,
        rpm: float | None = None,
        tpm: float | None = None,
        concurrency: int = 16,
        patience: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedLimit | None = None,
        draw: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ):
        self.name = name
        self._clock = clock
        self._draw = draw
        self._fake_sleep = sleep  # a test's sleep that moves `clock`: waits for the pace then cost no time
        self._shared = shared
        self._told = (rpm / 60 if rpm else None, tpm / 60 if tpm else None)
        self._server: tuple[float | None, float | None] = (None, None)
        self._backoff: float | None = None  # requests a second while backing off; None: at the ceiling
        self._known_good = float("inf")  # the last rate known to work: slow start runs up to it
        self._concurrency = concurrency
        self._window = float(concurrency)  # requests allowed in flight; a 503 cuts it
        self._in_flight = 0
        self._probe_until: float | None = None  # until the first answer (or PROBE_S), one request at a time
        self._probing = True
        self._paused_until = 0.0
        self._last_start = float("-inf")
        self._tokens_free_at = float("-inf")  # when the tokens of the requests started so far are paid off
        # What the last x-ratelimit-remaining-* said is left, less what was in flight then and what
        # started since: requests may
        # start early on that credit (a short job need not wait out a limit it will never reach),
        # until a refusal shows the server enforces its limit over a shorter period than it says.
        self._credit: list[float] | None = None  # [requests, tokens] left, when the server says
        self._trust_credit = True
        self._most_left = 0.0  # the most x-ratelimit-remaining-requests seen: about the server's burst
        self._room = False  # the last answer said at least half of that is left: nobody else is pressing
        self._settled_at = float("-inf")  # a cut reacts only to refusals of requests started after this
        self._last_ok = True
        self._last_success = clock()
        self._patience = patience
        self._cap = wait_cap(patience)  # the longest pause a server may ask for
        self.capped: ServerWait | None = None
        self._recent: deque[bool] = deque(maxlen=RECENT)  # whether each recent answer was a 429
        self._starts: deque[float] = deque(maxlen=32)
        self._gate = asyncio.Lock()  # waiters take their turn in order, one at a time
        self._changed = asyncio.Event()
        self._closed = False
        self.rate: float | None = None
        self.token_rate: float | None = None
        self._repace()

    # ------------------------------------------------------------------ what the pace is

    @property
    def counts_tokens(self) -> bool:
        return self.token_rate is not None

    def _repace(self) -> None:
        """Work out the pace again after what sets it changed; every request reads it."""
        told, server = self._told[1], self._server[1]
        self.rate = _lowest(self._ceiling(), self._backoff)  # requests a second, or None: nothing limits them
        self.token_rate = _lowest(told, server * MARGIN if server else None)

    def _ceiling(self) -> float | None:
        """The request rate the job and the server allow, before any backing off."""
        told, server = self._told[0], self._server[0]
        return _lowest(told, server * MARGIN if server else None)

    def patient(self) -> bool:
        """False once the limit has refused everything for `patience` seconds since its last success."""
        return self._clock() - self._last_success < self._patience

    def pace(self) -> Pace:
        server = self._server[0]
        rate = self.rate
        if rate is None:
            source = "unlimited"
        elif rate == self._backoff:
            source = "backing off"
        elif server is not None and rate == server * MARGIN:
            source = "headers"
        else:
            source = "told"
        window = int(self._window) if self._window < self._concurrency else None
        return Pace(
            self.name,
            rate,
            self.token_rate,
            source,
            max(0.0, self._paused_until - self._clock()),
            self._in_flight,
            window,
            self.capped,
        )

    # ------------------------------------------------------------------ taking a turn

    async def acquire(self, tokens: Callable[[], int] | None = None) -> Ticket:
        """Wait for this request's turn and count it in flight; returns the ticket to give done().
        `tokens` tells the request's size as a token limit counts it, asked only when one applies."""
        if self._shared is None and not self._gate.locked() and self._delay(tokens, self._clock()) <= 0:
            return self._start(tokens)
        async with self._gate:
            # Everything is checked again after every wait, the shared limit's included: a pause
            # or a stop may have come meanwhile.
            while (wait := self._delay(tokens, self._clock())) > 0 or (wait := await self._take_shared(tokens)) > 0:
                await self._sleep(wait)
            return self._start(tokens)

    async def _take_shared(self, tokens: Callable[[], int] | None) -> float:
        if self._shared is None:
            return 0.0
        size = tokens() if tokens is not None and self.counts_tokens else 0
        return await self._shared.take(self.rate, size, self.token_rate)

    def close(self) -> None:
        """Stop every waiting request: they raise Stopped."""
        self._closed = True
        self._changed.set()

    def _check_open(self) -> None:
        if self._closed:
            raise Stopped()

    def _delay(self, tokens: Callable[[], int] | None, now: float) -> float:
        """Seconds until a request may start; inf while it must wait for one in flight to end."""
        self._check_open()
        if self._probing and self._probe_until is not None and now >= self._probe_until:
            self._probing = False  # a slow first answer: its headers are not worth more waiting
        if self._in_flight >= (1 if self._probing else int(self._window)):
            return self._probe_until - now if self._probing and self._probe_until is not None else float("inf")
        return self._due(tokens, self._on_credit(tokens)) - now

    def _due(self, tokens: Callable[[], int] | None, on_credit: bool = False) -> float:
        """When the pace lets the next request start. On the server's credit its own limit need not
        be paced, but the job's limits and any backing off still are."""
        start = self._paused_until
        rate = _lowest(self._told[0], self._backoff) if on_credit else self.rate
        if rate:
            start = max(start, self._last_start + 1 / rate)
        if tokens is not None and (self._told[1] if on_credit else self.counts_tokens):
            start = max(start, self._tokens_free_at)
        return start

    def _on_credit(self, tokens: Callable[[], int] | None) -> bool:
        if self._credit is None or not self._trust_credit:
            return False
        requests, left = self._credit
        size = tokens() if tokens is not None and self.counts_tokens else 0
        return requests >= 1 and (not size or left >= size)

    def _start(self, tokens: Callable[[], int] | None) -> Ticket:
        now = self._clock()
        if self._probe_until is None:
            self._probe_until = now + PROBE_S
        on_credit = self._due(tokens) > now
        rate, token_rate = self.rate, self.token_rate
        due = self._last_start + 1 / rate if rate else now
        self._last_start = min(now, max(due, now - LATE))
        size = tokens() if tokens is not None and token_rate else 0
        if size and token_rate:
            self._tokens_free_at = max(self._tokens_free_at, now - LATE) + size / token_rate
        if self._credit is not None:
            self._credit[0] -= 1
            self._credit[1] -= size
        self._in_flight += 1
        self._starts.append(now)
        return Ticket(now, on_credit)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when anything changes (an answer, a pause, a new rate, a stop)."""
        if self._fake_sleep is not None and seconds != float("inf"):
            await self._fake_sleep(seconds)
            return
        self._changed.clear()
        try:
            await asyncio.wait_for(self._changed.wait(), None if seconds == float("inf") else seconds)
        except asyncio.TimeoutError:
            pass

    # ------------------------------------------------------------------ learning from answers

    def release(self) -> None:
        """A request ended with nothing learned from it (its task was cancelled)."""
        self._in_flight -= 1
        self._changed.set()

    def too_big(self, tokens: int) -> float | None:
        """The token limit a request of `tokens` can never fit (a minute's worth), else None."""
        per_second = _lowest(self._told[1], self._server[1])
        return per_second * 60 if per_second and tokens > per_second * 60 else None

    def done(self, ticket: Ticket, headers: Mapping[str, str] | None, failure: Failure | None = None) -> None:
        """A request ended: answered (failure None), refused, or failed. `headers` are the answer's."""
        now = self._clock()
        self._in_flight -= 1
        self._probing = False
        if headers:
            self._learn(headers, now)
        # every server-told wait is capped alike, the one a 500 names for its own retry too
        told = self._heed(server_wait(failure.headers or {}, cap=self._cap)) if failure else 0.0
        if failure is None:
            self._recent.append(False)
            self._succeeded(now)
        elif failure.rate_limited or failure.overloaded:
            if failure.rate_limited:
                self._recent.append(True)
            if ticket.on_credit:
                self._trust_credit = False
            if not (failure.rate_limited and self._sporadic(failure.headers or {})):
                self._pause(told, now)
                self._cut(ticket, now, window=failure.overloaded)
        elif failure.cause == "timeout":  # slow, as a relay queuing requests is: fewer at once, as for a 503
            self._cut(ticket, now, window=True)
        self._changed.set()

    def _learn(self, headers: Mapping[str, str], now: float) -> None:
        if not any(name in headers for name in RATE_HEADERS):
            return
        limits = ServerLimits.parse(headers)
        requests, tokens = self._server
        self._server = (
            limits.requests_per_minute / 60 if limits.requests_per_minute else requests,
            limits.tokens_per_minute / 60 if limits.tokens_per_minute else tokens,
        )
        self._repace()
        left = number(headers.get("x-ratelimit-remaining-requests"))
        if left is not None:
            tokens_left = number(headers.get("x-ratelimit-remaining-tokens"))
            # Requests in flight may not have reached the server when it counted: assume they had not.
            self._credit = [left - self._in_flight, tokens_left if tokens_left is not None else float("inf")]
            self._most_left = max(self._most_left, left)
            self._room = left >= self._most_left / 2
        self._pause(self._heed(refill(headers, self._cap)), now)

    def _heed(self, told: ServerWait | None) -> float:
        """The seconds of a server-told wait, capped; the first one capped is kept to be reported."""
        if told is None:
            return 0.0
        if told.capped and self.capped is None:
            self.capped = told
        return told.seconds

    def _sporadic(self, headers: Mapping[str, str]) -> bool:
        """A 429 (already counted in the recent answers) no header backs, among few others: noise
        the pace is not to blame for (a shared key, a relay), so it neither pauses nor cuts."""
        return refill(headers) is None and sum(self._recent) < SPORADIC * len(self._recent)

    def _pause(self, seconds: float, now: float) -> None:
        """Hold every request `seconds`, and up to a quarter more at random (never past the job's
        patience), so that processes sharing a limit do not all come back at the same moment."""
        if seconds > 0 and now + seconds > self._paused_until:
            jittered = seconds * (1 + PAUSE_JITTER * self._draw())
            self._paused_until = now + min(jittered, max(seconds, self._cap))
            self._credit = None  # the server's word on what is left no longer holds

    def _succeeded(self, now: float) -> None:
        self._last_success = now
        self._last_ok = True
        if self._window < self._concurrency:
            self._window = min(float(self._concurrency), self._window + WINDOW_STEP / self._window)
        if self._backoff is None:
            return
        # Quickly back to the rate known to work, or while the server shows room to spare (another
        # process on the key finished), and slowly beyond.
        fast = self._backoff < self._known_good or self._room
        self._backoff += SLOW_START_STEP if fast else PROBE_STEP
        ceiling = self._ceiling()
        if ceiling is not None and self._backoff >= ceiling:
            self._backoff = None  # back at the ceiling: nothing learned by backing off still binds
        self._repace()

    def _cut(self, ticket: Ticket, now: float, window: bool) -> None:
        """Multiplicative decrease, once per round trip: refusals of requests sent before the last
        cut took effect (its pause, then one interval at the new pace) say nothing about that pace."""
        if ticket.started < self._settled_at:
            return
        if window:
            self._window = max(1.0, self._window * BETA)
            self._settled_at = max(now, self._paused_until)
            return
        measured = self._measured(now)
        ceiling = self._ceiling()
        floor = min(MIN_RATE, ceiling / 2) if ceiling else MIN_RATE
        if self._last_ok and measured is not None:  # the first refusal after a success: a bit less worked
            self._known_good = max(floor, _lowest(self.rate, measured) * BETA)  # type: ignore[operator]
        self._backoff = max(floor, (_lowest(self.rate, measured) or MIN_RATE) * BETA)
        self._repace()
        self._last_ok = False
        self._settled_at = max(now, self._paused_until) + 1 / self._backoff

    def _measured(self, now: float) -> float | None:
        """The rate requests were actually started at lately."""
        if len(self._starts) < 2 or now <= self._starts[0]:
            return None
        return (len(self._starts) - 1) / (now - self._starts[0])


def _lowest(*rates: float | None) -> float | None:
    known = [r for r in rates if r]
    return min(known) if known else None
