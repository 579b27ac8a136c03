"""Sporadic 429s are not a limit (issue 24): a pacer told no limit, refused 3% of the time at
random with no header saying a limit is used up, keeps its pace; after a real spell of refusals
it climbs back within seconds however many sporadic ones come meanwhile. A limit that refuses
most requests is still one.

One request after another on a fake clock, each answered 10 ms after it starts (100 a second at
most), the pacer's waits moving the clock: the figures are the pacer's alone, and no test waits.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from batchgpt.pacer import Pacer
from batchgpt.records import Failure

LATENCY = 0.01
TOLD = {"retry-after-ms": "50", "retry-after": "1"}  # as the mock's 429 and OpenAI's say it


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def refused(headers: dict[str, str]) -> Failure:
    return Failure("http", "Rate limit reached", 429, code="rate_limit_exceeded", type="requests", headers=headers)


def drive(pacer: Pacer, clock: Clock, seconds: float, refuse: Callable[[], bool]) -> int:
    """Requests one after another for `seconds` of the clock; `refuse()` says which the server
    refuses (a 429 with only a retry-after). Returns how many were answered."""

    async def go() -> int:
        answered = 0
        end = clock.now + seconds
        while clock.now < end:
            ticket = await pacer.acquire()
            clock.now += LATENCY
            if refuse():
                pacer.done(ticket, TOLD, refused(TOLD))
            else:
                pacer.done(ticket, {})
                answered += 1
        return answered

    return asyncio.run(go())


def pacer_on(clock: Clock) -> Pacer:
    return Pacer("m", clock=clock, sleep=clock.sleep, draw=lambda: 0.5)


def test_three_percent_of_429s_at_random_keep_the_pace_of_a_clean_run():
    clean_clock, noisy_clock = Clock(), Clock()
    clean = drive(pacer_on(clean_clock), clean_clock, 30, lambda: False)
    noise = random.Random(24)
    noisy_pacer = pacer_on(noisy_clock)
    noisy = drive(noisy_pacer, noisy_clock, 30, lambda: noise.random() < 0.03)
    # before: each one cut the rate by 0.7 and paused every request 50 ms; it sank to a few a second
    assert noisy >= 0.9 * clean
    assert noisy_pacer.pace().source == "unlimited" and noisy_pacer.pace().paused_for == 0


def test_after_a_spell_of_refusals_the_pace_climbs_back_within_seconds_through_sporadic_ones():
    clock = Clock()
    pacer = pacer_on(clock)
    before = drive(pacer, clock, 5, lambda: False) / 5
    drive(pacer, clock, 3, lambda: True)  # a real spell: everything refused, the rate cut to its floor
    assert pacer.pace().source == "backing off" and pacer.pace().rate is not None and pacer.pace().rate < 10
    noise = random.Random(7)
    drive(pacer, clock, 10, lambda: noise.random() < 0.03)
    after = drive(pacer, clock, 5, lambda: noise.random() < 0.03) / 5
    assert after >= 0.8 * before


def test_a_limit_that_refuses_most_requests_is_still_a_limit():
    clock = Clock()
    pacer = pacer_on(clock)
    drive(pacer, clock, 2, lambda: False)
    turn = iter(range(10**6))
    drive(pacer, clock, 2, lambda: next(turn) % 3 != 0)  # two in three refused: the pace is to blame
    pace = pacer.pace()
    assert pace.source == "backing off" and pace.rate is not None and pace.rate < 50


def test_a_429_whose_headers_say_the_limit_is_used_up_cuts_the_pace_however_rare():
    clock = Clock()
    pacer = pacer_on(clock)
    drive(pacer, clock, 2, lambda: False)

    async def one_refusal() -> None:
        ticket = await pacer.acquire()
        clock.now += LATENCY
        used_up = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
        pacer.done(ticket, used_up, refused(used_up))

    asyncio.run(one_refusal())
    pace = pacer.pace()
    assert pace.source == "backing off" and pace.paused_for > 1
