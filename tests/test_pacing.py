"""The pacer: what the server's headers and refusals teach it, and how requests take their turns.

Everything runs on a fake clock: rules about rates through `pace()`, and waiting with a sleep
that moves the clock (no test waits for real time, so a loaded machine changes nothing).
"""

from __future__ import annotations

import asyncio

import pytest

from batchgpt.pacer import LATE, MARGIN, MIN_RATE
from batchgpt.pacing import Pacer, Pacing, Stopped
from batchgpt.ratelimits import ServerLimits, parse_duration, refill_wait
from batchgpt.records import Failure

LIMITS = {
    "x-ratelimit-limit-requests": "600",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "100ms",
    "x-ratelimit-limit-tokens": "60000",
}
REFUSED = Failure("http", "Rate limit reached", 429, code="rate_limit_exceeded", type="requests", headers={})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """A pacer's wait: the clock moves on at once."""
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def others_run() -> None:
    """Let every other task run as far as it can without time passing."""
    for _ in range(10):
        await asyncio.sleep(0)


def run(coroutine):
    return asyncio.run(coroutine)


def started(pacer: Pacer, n: int = 1) -> list:
    """Start n requests; on a fake clock they must all be free to start now."""

    async def go():
        return [await asyncio.wait_for(pacer.acquire(), 5) for _ in range(n)]

    return run(go())


def test_told_limits_pace_evenly_and_the_servers_lower_limit_wins():
    clock = Clock()
    pacer = Pacer("m", rpm=6000, clock=clock)
    assert pacer.pace().rate == 100 and pacer.pace().source == "told"
    [ticket] = started(pacer)
    pacer.done(ticket, {"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "60000"})
    pace = pacer.pace()
    assert pace.rate == pytest.approx(10 * MARGIN) and pace.source == "headers"
    assert pace.token_rate == pytest.approx(1000 * MARGIN)
    higher = Pacer("m", rpm=60, clock=clock)
    [ticket] = started(higher)
    higher.done(ticket, {"x-ratelimit-limit-requests": "600"})
    assert higher.pace().rate == 1 and higher.pace().source == "told"


def test_a_used_up_limit_pauses_until_one_more_request_fits():
    clock = Clock()
    pacer = Pacer("m", clock=clock, draw=lambda: 0.0)
    [ticket] = started(pacer)
    pacer.done(ticket, LIMITS)
    assert pacer.pace().paused_for == pytest.approx(0.1)  # 600 a minute: one more fits in 0.1 s
    clock.now += 0.1
    assert pacer.pace().paused_for == 0


def answered_probe(pacer: Pacer, headers: dict | None = None) -> None:
    """The first request on a limit goes alone: answer it, so that the others may start."""
    [probe] = started(pacer)
    pacer.done(probe, headers)


def test_a_refusal_without_headers_cuts_the_rate_and_successes_bring_it_back():
    clock = Clock()
    pacer = Pacer("m", rpm=6000, clock=clock)
    answered_probe(pacer)
    tickets = []
    for _ in range(11):  # 100 a second, as told
        tickets += started(pacer)
        clock.now += 0.01
    pacer.done(tickets[-1], None, REFUSED)
    pace = pacer.pace()
    assert pace.source == "backing off" and pace.rate == pytest.approx(70, rel=0.02)
    pacer.done(tickets[-2], None, REFUSED)  # sent before the cut: says nothing about the new rate
    assert pacer.pace().rate == pace.rate
    for ticket in tickets[:-2]:
        pacer.done(ticket, None)
    assert pacer.pace().rate > pace.rate


def test_backing_off_converges_from_ten_times_too_much_and_keeps_a_floor():
    clock = Clock()
    pacer = Pacer("m", rpm=6000, clock=clock)
    answered_probe(pacer)
    rates = []
    for _ in range(16):  # every request refused, each sent at the pace of the last cut
        clock.now += 1 / pacer.pace().rate
        [ticket] = started(pacer)
        clock.now += 0.001
        pacer.done(ticket, None, REFUSED)
        rates.append(pacer.pace().rate)
    assert rates == sorted(rates, reverse=True)
    assert rates[6] < 10 and rates[-1] == MIN_RATE


def test_a_retry_after_pause_is_kept_and_then_requests_resume_one_at_a_time():
    clock = Clock()

    async def go():
        pacer = Pacer("m", rpm=600, draw=lambda: 0.0, clock=clock, sleep=clock.sleep)  # 10 a second
        first = await pacer.acquire()
        pacer.done(
            first, {"retry-after-ms": "300"}, Failure("http", "slow down", 429, headers={"retry-after-ms": "300"})
        )
        refused_at = clock()
        starts = []
        for _ in range(4):
            await pacer.acquire()
            starts.append(clock())
        return refused_at, starts

    refused_at, starts = run(go())
    assert starts[0] - refused_at >= 0.3 - 1e-9  # never before the server's retry-after
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 0.1 - 1e-9 for gap in gaps)  # then at the pace, not every worker at once


def test_a_pause_the_server_asks_for_is_never_longer_than_patience_and_is_kept_to_be_told():
    clock = Clock()
    pacer = Pacer("m", patience=5, clock=clock, draw=lambda: 0.999)
    [ticket] = started(pacer)
    years = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "18934560m0s"}
    pacer.done(ticket, years)  # an answer whose headers say the limit is whole again in 36 years
    pace = pacer.pace()
    assert pace.paused_for == 5  # not 36 years, and no jitter past the patience
    assert pace.capped is not None and pace.capped.asked > 1e9 and pace.capped.seconds == 5


def test_the_first_request_on_a_limit_goes_alone():
    async def go():
        pacer = Pacer("m", concurrency=8)
        first = await pacer.acquire()
        second = asyncio.ensure_future(pacer.acquire())
        await others_run()
        waited = not second.done()
        pacer.done(first, {})
        await asyncio.wait_for(second, 1)
        return waited

    assert run(go())


def test_an_overloaded_server_gets_fewer_requests_at_once():
    async def go():
        pacer = Pacer("m", concurrency=4)
        probe = await pacer.acquire()
        pacer.done(probe, {})
        tickets = [await pacer.acquire() for _ in range(4)]
        pacer.done(tickets[-1], None, Failure("http", "overloaded", 503, headers={}))
        window = pacer.pace().window
        blocked = asyncio.ensure_future(pacer.acquire())  # three in flight, and a window of two
        await others_run()
        went_early = blocked.done()
        pacer.done(tickets[0], None)
        pacer.done(tickets[1], None)
        await asyncio.wait_for(blocked, 1)
        return window, went_early

    window, went_early = run(go())
    assert window == 2 and not went_early


def test_a_slow_server_gets_fewer_requests_at_once_once_per_wave_and_more_again_as_it_answers():
    clock = Clock()
    pacer = Pacer("m", concurrency=16, clock=clock)
    [probe] = started(pacer)
    pacer.done(probe, {})
    tickets = started(pacer, 16)
    clock.now += 60
    for ticket in tickets:  # the whole wave timed out together: one cut, not sixteen
        pacer.done(ticket, None, Failure("timeout", "no complete answer within 60 s"))
    assert pacer.pace().window == 11
    for _ in range(700):  # one more in flight per ten windows of answers
        [ticket] = started(pacer)
        pacer.done(ticket, {})
    assert pacer.pace().window is None  # back to the concurrency


def test_the_servers_word_on_what_is_left_lets_a_short_job_start_at_once_until_it_is_refused():
    clock = Clock()
    pacer = Pacer("m", clock=clock, sleep=clock.sleep)  # the server says one a second
    [probe] = started(pacer)
    pacer.done(probe, {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59"})
    tickets = started(pacer, 5)  # no clock time passes: all five start on the server's credit
    assert all(t.on_credit for t in tickets)
    pacer.done(tickets[0], None, REFUSED)  # yet it refused: it enforces over a shorter period
    pacer.done(tickets[1], {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "50"})
    clock.now += 60
    [next_one] = started(pacer)
    assert not next_one.on_credit

    run(pacer.acquire())
    assert sum(clock.slept) > 0.2  # the next slot is a second away


def test_patience_runs_out_only_after_a_whole_spell_without_success():
    clock = Clock()
    pacer = Pacer("m", patience=900, clock=clock)
    [ticket] = started(pacer)
    clock.now += 899
    assert pacer.patient()
    pacer.done(ticket, None)
    clock.now += 899
    assert pacer.patient()
    clock.now += 2
    assert not pacer.patient()


def test_a_stopped_run_releases_every_waiting_request():
    async def go():
        pacer = Pacer("m", rpm=6)  # one every ten seconds
        await pacer.acquire()
        waiting = [asyncio.ensure_future(pacer.acquire()) for _ in range(3)]
        await others_run()
        pacer.close()
        return await asyncio.gather(*waiting, return_exceptions=True)

    assert all(isinstance(r, Stopped) for r in run(go()))


def test_token_limits_hold_back_big_requests():
    clock = Clock()

    async def go():
        pacer = Pacer("m", tpm=6000, clock=clock, sleep=clock.sleep)  # 100 tokens a second
        start = clock()
        for _ in range(3):
            pacer.done(await pacer.acquire(lambda: 50), None)
        return clock() - start

    assert run(go()) >= 0.95  # 150 tokens: the third waits until the first two are paid off


def test_limits_belong_to_an_endpoint_a_key_and_a_model():
    pacing = Pacing(None, None, 4, 900)
    a = pacing.pacer("https://api.openai.com/v1", "sk-1", "gpt-4o")
    assert pacing.pacer("https://api.openai.com/v1", "sk-1", "gpt-4o") is a
    others = {
        pacing.pacer("https://api.openai.com/v1", "sk-2", "gpt-4o"),
        pacing.pacer("https://api.openai.com/v1", "sk-1", "gpt-4o-mini"),
        pacing.pacer("http://127.0.0.1:8000/v1", "sk-1", "gpt-4o"),
    }
    assert a not in others and len(others) == 3
    assert all("sk-" not in repr(p.pace()) for p in [a, *others])


def test_header_parsing():
    assert ServerLimits.parse(LIMITS) == ServerLimits(600, 60000, pytest.approx(0.1))
    assert ServerLimits.parse({"x-ratelimit-limit-requests": "soon"}) == ServerLimits()
    assert refill_wait({"x-ratelimit-remaining-requests": "3"}, "requests") is None
    assert (
        refill_wait(
            {
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1m0s",
            },
            "requests",
        )
        == 1.0
    )
    assert refill_wait({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2.5s"}, "requests") == 2.5
    assert refill_wait({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}, "tokens") == 1.0


@pytest.mark.parametrize(
    "text,seconds", [("1s", 1), ("6m0s", 360), ("12ms", 0.012), ("0s", 0), ("1.5s", 1.5), ("1h2m3s", 3723), ("20", 20)]
)
def test_reset_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_garbage_durations_are_ignored():
    assert parse_duration("soon") is None and parse_duration("5x") is None


def test_a_slow_first_answer_holds_the_others_back_only_for_a_moment():
    clock = Clock()
    pacer = Pacer("m", concurrency=4, clock=clock)
    started(pacer)  # the first request: no answer yet
    clock.now += 2.0  # PROBE_S later, its headers are not worth more waiting
    assert len(started(pacer, 3)) == 3


def test_the_servers_credit_never_outruns_the_jobs_own_limit():
    clock = Clock()
    pacer = Pacer("m", rpm=60, clock=clock, sleep=clock.sleep)  # one a second, whatever the server allows
    answered_probe(pacer, {"x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999"})
    clock.now += 1.0
    started(pacer)
    run(pacer.acquire())
    assert sum(clock.slept) == pytest.approx(1.0 - LATE)  # the second waited its second (a late start keeps its slot)


def test_credit_counts_what_was_in_flight_when_the_server_counted():
    clock = Clock()
    pacer = Pacer("m", clock=clock, sleep=clock.sleep)
    answered_probe(pacer, {"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "9"})
    in_flight = started(pacer, 4)
    pacer.done(in_flight[0], {"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "5"})
    assert all(t.on_credit for t in started(pacer, 2))  # 5 left, less the 3 still in flight
    assert not clock.slept
    third = run(pacer.acquire())  # no credit left: the next waits for the pace
    assert not third.on_credit and sum(clock.slept) == pytest.approx(1 / (10 * MARGIN))


def test_a_limit_first_used_after_the_run_stopped_starts_nothing():
    pacing = Pacing(None, None, 4, 900)
    pacing.close()
    with pytest.raises(Stopped):
        started(pacing.pacer("http://x/v1", None, "m"))


def test_a_request_bigger_than_a_minute_of_tokens_is_told_apart():
    pacer = Pacer("m", tpm=600)
    assert pacer.too_big(601) == 600 and pacer.too_big(600) is None
    assert Pacer("m").too_big(10**9) is None


def test_a_cancelled_request_leaves_the_count_in_flight_as_it_was():
    async def go():
        pacer = Pacer("m", concurrency=1)
        pacer.done(await pacer.acquire(), {})
        await pacer.acquire()
        pacer.release()
        return await asyncio.wait_for(pacer.acquire(), 1)  # the one slot is free again

    assert run(go())


def test_names_show_no_credentials():
    pacer = Pacing(None, None, 4, 900).pacer("https://user:secret@proxy.example/v1?key=sk-123", "sk-123", "m")
    assert pacer.name == "m at https://proxy.example/v1"
