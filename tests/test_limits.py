"""The shared throttle: pauses and evenly spread rates. Only lower bounds on time are asserted."""
from __future__ import annotations

import asyncio
import time

from batchgpt.limits import Throttle


def elapsed(coroutine) -> float:
    started = time.monotonic()
    asyncio.run(coroutine)
    return time.monotonic() - started


def test_requests_per_minute_are_spread_not_burst():
    # 600 rpm is 10 a second; the bucket holds one second, so 15 acquisitions need at least 0.5 s.
    async def go():
        throttle = Throttle(rpm=600, tpm=None)
        for _ in range(15):
            await throttle.acquire()
    assert elapsed(go()) >= 0.45


def test_tokens_per_minute_hold_back_big_requests():
    # 6000 tpm = 100 tokens a second, 600 in the six-second bucket: 600 + 100 tokens need >= 1 s.
    async def go():
        throttle = Throttle(rpm=None, tpm=6000)
        assert throttle.counts_tokens
        await throttle.acquire(600)
        await throttle.acquire(100)
    assert elapsed(go()) >= 0.9


def test_a_pause_holds_every_request():
    async def go():
        throttle = Throttle(rpm=None, tpm=None)
        throttle.pause(0.3)
        await asyncio.gather(*(throttle.acquire() for _ in range(5)))
    assert elapsed(go()) >= 0.29


def test_an_exhausted_limit_header_pauses_until_one_more_request_fits():
    now = [100.0]
    throttle = Throttle(rpm=None, tpm=None, clock=lambda: now[0])
    throttle.observe({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "9s"})
    assert throttle._paused_until == 0.0
    # 60 requests a minute, none left, whole again in a minute: one more fits in a second.
    throttle.observe({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                      "x-ratelimit-reset-requests": "1m0s"})
    assert throttle._paused_until == 101.0
    throttle.observe({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"})
    assert throttle._paused_until == 101.0  # tokens: at most a second
    throttle.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2.5s"})
    assert throttle._paused_until == 102.5  # no limit header: the whole reset
    throttle.pause(0.5)  # a shorter pause never shortens a longer one
    assert throttle._paused_until == 102.5


def test_no_limits_means_no_waiting():
    async def go():
        throttle = Throttle(rpm=None, tpm=None)
        assert not throttle.counts_tokens
        for _ in range(1000):
            await throttle.acquire(10_000)
    asyncio.run(go())
